/**
 * The CLI against real servers, real CRIU, as root: every check a capture can fail is made before the server is
 * launched (a server that would leave a mark shows it was never started); `--json` after `--` is the server's;
 * and the documents of capture, restore, logs, ps, stop, serve and demo are valid against their published schemas.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES, MAIN } from "../testing/cli.js";
import { assertValidDocument } from "../testing/schemas.js";
import { freePort } from "../proc/net.js";

const { env, home, teardown } = tempHome();
const scratch = mkdtempSync(join(tmpdir(), "stasis-cli-itest-"));
after(() => teardown(1, scratch));

/** A "server" that only leaves a mark: the capture must fail before it would have run. */
function marker(name: string): { argv: string[]; launched: () => boolean } {
  const file = join(scratch, name);
  return { argv: ["sh", "-c", `touch ${file}; sleep 60`], launched: () => existsSync(file) };
}

const instances = () =>
  readdirSync(join(home, "instances"), { withFileTypes: true }).filter((d) => d.isDirectory()).length;

async function refusedBeforeLaunch(
  args: string[],
  code: string,
  exit: number,
  message: RegExp,
  opts: { asUser?: number } = {},
) {
  const before = existsSync(join(home, "instances")) ? instances() : 0;
  const m = marker(`${code}-${Math.random().toString(36).slice(2)}`);
  const argv = ["capture", "refused", ...args, "--", ...m.argv];
  const r =
    opts.asUser === undefined
      ? await stasis(argv, env, 30_000)
      : await new Promise<{ code: number; stderr: string }>((resolve) => {
          const child = spawn(
            "setpriv",
            [`--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, "--clear-groups", process.execPath, MAIN, ...argv],
            { env: { ...process.env, ...env } },
          );
          let stderr = "";
          child.stderr.on("data", (d: Buffer) => (stderr += d));
          child.on("close", (c) => resolve({ code: c ?? -1, stderr }));
        });
  assert.equal(r.code, exit, r.stderr);
  assert.match(r.stderr, new RegExp(`error ${code}: `));
  assert.match(r.stderr, message);
  assert.equal(m.launched(), false, "the server was never launched");
  if (existsSync(join(home, "instances"))) assert.equal(instances(), before, "no instance folder was made");
  return r;
}

test("regression: a capture as a non-root user is refused before the server is launched", async () => {
  const port = await freePort();
  await refusedBeforeLaunch(
    ["--ready-url", `http://127.0.0.1:${port}/`, "--canary-url", `http://127.0.0.1:${port}/`],
    "E_PERMISSION",
    5,
    /capture needs root \(running as uid 65534\)/,
    { asUser: 65534 },
  );
});

test("regression: an http capture without --canary-url is refused before the server is launched", async () => {
  const port = await freePort();
  await refusedBeforeLaunch(
    ["--ready-url", `http://127.0.0.1:${port}/`],
    "E_USAGE",
    2,
    /needs a canary request \(--canary-url\)\n {2}hint: pass --canary-url URL/,
  );
});

test("a capture whose ready URL's port is taken is refused before the launch", async () => {
  const held = createServer().listen(0, "127.0.0.1");
  await once(held, "listening");
  try {
    const port = (held.address() as { port: number }).port;
    await refusedBeforeLaunch(
      ["--ready-url", `http://127.0.0.1:${port}/`, "--canary-url", `http://127.0.0.1:${port}/`],
      "E_ADDRESS_IN_USE",
      4,
      new RegExp(`port ${port} of the ready URL is already taken`),
    );
  } finally {
    held.close();
  }
});

test("vLLM without sleep mode, dev mode or stasis's worker extension is refused before it loads a model", async () => {
  // A stand-in named vllm: were it launched, it would leave its mark like the others.
  const bin = join(scratch, "bin");
  rmSync(bin, { recursive: true, force: true });
  const { mkdirSync } = await import("node:fs");
  mkdirSync(bin);
  const port = await freePort();
  const ready = ["--engine", "vllm", "--ready-url", `http://127.0.0.1:${port}/health`];
  for (const [flags, envs, missing] of [
    [
      ["--worker-extension-cls", "stasis_engine.vllm.StasisWorkerExtension"],
      ["--env", "VLLM_SERVER_DEV_MODE=1"],
      /lacks --enable-sleep-mode\n.*add --enable-sleep-mode/,
    ],
    [
      ["--enable-sleep-mode", "--worker-extension-cls", "stasis_engine.vllm.StasisWorkerExtension"],
      [],
      /lacks VLLM_SERVER_DEV_MODE=1\n.*add --env VLLM_SERVER_DEV_MODE=1/,
    ],
    [
      ["--enable-sleep-mode"],
      ["--env", "VLLM_SERVER_DEV_MODE=1"],
      /lacks --worker-extension-cls\n.*add --worker-extension-cls stasis_engine\.vllm\.StasisWorkerExtension/,
    ],
  ] as const) {
    const mark = join(scratch, `vllm-launched-${Math.random().toString(36).slice(2)}`);
    const vllm = join(bin, "vllm");
    writeFileSync(vllm, `#!/bin/sh\ntouch ${mark}\nsleep 60\n`);
    chmodSync(vllm, 0o755);
    const r = await stasis(
      ["capture", "v", ...ready, ...envs, "--", vllm, "serve", "/models/m", "--port", String(port), ...flags],
      env,
      30_000,
    );
    assert.equal(r.code, 2, r.output);
    assert.match(r.stderr, missing);
    assert.match(r.stderr, /--allow-full-image/);
    assert.equal(existsSync(mark), false, "vLLM was never launched");
  }
});

test("capture, restore, logs, ps and stop: documents valid against their schemas; --json after `--` is the server's", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = ["python3", join(EXAMPLES, "slow_server.py"), "--port", String(port), "--startup-seconds", "0.5"];
  const cap = await stasis(
    [
      "capture",
      "doc",
      "--json",
      "--ready-url",
      `${base}/health`,
      "--canary-url",
      `${base}/answer?q=c`,
      "--",
      ...server,
    ],
    env,
  );
  assert.equal(cap.code, 0, cap.output);
  assertValidDocument(cap.json, "stasis.capture/v1");
  assert.deepEqual([cap.json.snapshot, cap.json.snapshotDir], ["doc", join(home, "snapshots", "doc")]);
  const res = await stasis(["restore", "doc", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assertValidDocument(res.json, "stasis.restore/v1");
  assert.ok(
    res.json.phases.every((p: { durationMs: number }) => Number.isInteger(p.durationMs * 10)),
    "durations in 0.1 ms",
  );
  const id = res.json.instance.id;
  const logs = await stasis(["logs", id, "--criu", "--json"], env);
  assert.equal(logs.code, 0, logs.output);
  assertValidDocument(logs.json, "stasis.logs/v1");
  assert.ok(
    logs.json.logs.some(
      (l: { path: string; text: string }) => l.path.endsWith("criu-restore.log") && l.text.length > 0,
    ),
    "CRIU's restore log",
  );
  const ps = await stasis(["ps", "--json"], env);
  assertValidDocument(ps.json, "stasis.ps/v1");
  assert.deepEqual(
    ps.json.instances.map((i: { id: string }) => i.id),
    [id],
  );
  const stop = await stasis(["stop", id, "--json"], env);
  assertValidDocument(stop.json, "stasis.stop/v1");

  // The server's own `--json` (here an argument its shell wrapper ignores) does not make stasis print JSON.
  const port2 = await freePort();
  const wrapped = [
    "sh",
    "-c",
    `exec python3 ${join(EXAMPLES, "slow_server.py")} --port ${port2} --startup-seconds 0`,
    "server",
    "--json",
  ];
  const text = await stasis(
    [
      "capture",
      "text",
      "--ready-url",
      `http://127.0.0.1:${port2}/health`,
      "--canary-url",
      `http://127.0.0.1:${port2}/answer?q=c`,
      "--",
      ...wrapped,
    ],
    env,
  );
  assert.equal(text.code, 0, text.output);
  assert.doesNotMatch(text.stdout, /^\s*\{/, "not JSON");
  assert.match(text.stdout, /^captured "text" in /m);
});

test("serve and demo print documents valid against their schemas", async () => {
  const socket = join(scratch, "d.sock");
  const daemon = spawn(process.execPath, [MAIN, "serve", "--json", "--socket", socket], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  daemon.stdout.on("data", (d: Buffer) => (out += d));
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
  daemon.kill("SIGTERM");
  await once(daemon, "close");
  assertValidDocument(JSON.parse(out), "stasis.serve/v1");
  const demo = await stasis(["demo", "--json", "--startup-seconds", "0.5"], env);
  assert.equal(demo.code, 0, demo.output);
  assertValidDocument(demo.json, "stasis.demo/v1");
});
