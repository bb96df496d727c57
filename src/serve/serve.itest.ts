/**
 * `stasis serve` for real (root, CRIU): with the daemon running, `stasis restore` hands it the work and the
 * restored server answers its canary; once the daemon is stopped (SIGTERM), its socket is gone and the same
 * command restores in its own process.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES, MAIN } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { freePort } from "../proc/net.js";

const { home, env, teardown } = tempHome();
after(() => teardown(1));

test("restore goes through a running `stasis serve`, and in-process once it is stopped", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cap = await stasis(
    [
      "capture",
      "served",
      "--json",
      "--ready-url",
      `${base}/health`,
      "--canary-url",
      `${base}/answer?q=served`,
      "--",
      "python3",
      join(EXAMPLES, "slow_server.py"),
      "--port",
      String(port),
      "--startup-seconds",
      "0.3",
    ],
    env,
  );
  assert.equal(cap.code, 0, cap.output);

  const socket = join(home, "stasisd.sock");
  // --pin-weights: the CPU example server stages no weights, so the flag must change nothing here.
  const daemon = spawn(process.execPath, [MAIN, "serve", "--pin-weights"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  daemon.stderr.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.on("exit", (code) => resolve(code)));
  try {
    for (let i = 0; i < 300 && !log.includes("listening on"); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(log, /listening on .*stasisd\.sock/);

    const viaDaemon = await stasis(["restore", "served", "--json"], env);
    assert.equal(viaDaemon.code, 0, viaDaemon.output);
    assert.equal(viaDaemon.json.via, "daemon");
    assert.ok(
      viaDaemon.json.phases.some((p: { name: string }) => p.name === "criu-restore"),
      "the daemon's timeline came back",
    );
    assert.equal((await httpOk(`${base}/answer?q=served`)).body, cap.json.manifest.engine.canary.text);
    assert.match(log, /restored "served" as instance/);
    assert.equal((await stasis(["stop", viaDaemon.json.instance.id], env)).code, 0);

    // `stasis bench --via api` restores with requests to the daemon, timed from the request.
    const bench = await stasis(
      ["bench", "served", "--strategies", "restore-hot", "--repeat", "1", "--via", "api", "--json"],
      env,
    );
    assert.equal(bench.code, 0, bench.output);
    const hot = bench.json.strategies[0];
    assert.equal(hot.runs[0].phases[0].name, "request");
    assert.match(hot.setup, /a request to `stasis serve`/);
    assert.equal(bench.json.via, "api");
    assert.equal((log.match(/restored "served" as instance/g) ?? []).length, 2, log);

    // A daemon's error comes back as the CLI's own: code, hint and exit status.
    const missing = await stasis(["restore", "nothing-here", "--json"], env);
    assert.equal(missing.code, 3);
    assert.equal(missing.json.error.code, "E_SNAPSHOT_NOT_FOUND");
  } finally {
    daemon.kill("SIGTERM");
  }
  assert.equal(await exited, 0, log);
  assert.equal(existsSync(socket), false, "the daemon removed its socket");

  const inProcess = await stasis(["restore", "served", "--json"], env);
  assert.equal(inProcess.code, 0, inProcess.output);
  assert.equal(inProcess.json.via, "process");
  assert.equal((await httpOk(`${base}/answer?q=served`)).body, cap.json.manifest.engine.canary.text);
});
