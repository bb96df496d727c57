/**
 * The settings a user gives `stasis restore` reach the daemon that does the restore (root, CRIU): the daemon runs
 * with the working set on (its default), and `STASIS_WORKING_SET=0 stasis restore` through it records and reads
 * none, where the daemon's own environment used to decide alone. Then the same command without the variable
 * records one (so it was the request that turned it off), and a later restore reads it, unless the request says 0.
 * A capture through the daemon is the same: `STASIS_IO_URING_FILTER=0 stasis capture` starts its server unfiltered.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES, MAIN, type CliRun } from "../testing/cli.js";
import { freePort } from "../proc/net.js";

const { home, env, teardown } = tempHome();
after(() => teardown(1));

const phase = (r: CliRun, name: string) => (r.json.phases as { name: string }[]).find((p) => p.name === name);

test("STASIS_WORKING_SET=0 stasis restore, done by `stasis serve`, restores without the working set", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cap = await stasis(
    [
      "capture",
      "knobs",
      "--json",
      "--ready-url",
      `${base}/health`,
      "--canary-url",
      `${base}/answer?q=knobs`,
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
  const workingSet = join(home, "snapshots", "knobs", "working-set.json");

  const daemon = spawn(process.execPath, [MAIN, "serve"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  daemon.stderr.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.on("exit", (code) => resolve(code)));
  const restore = async (knobs: Record<string, string>, ...args: string[]) => {
    const r = await stasis(["restore", "knobs", "--json", ...args], { ...env, ...knobs });
    assert.equal(r.code, 0, r.output);
    assert.equal(r.json.via, "daemon", "the daemon did the restore");
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
    return r;
  };
  try {
    for (let i = 0; i < 300 && !log.includes("listening on"); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(log, /listening on/);

    const off = await restore({ STASIS_WORKING_SET: "0" });
    assert.equal(phase(off, "record-working-set"), undefined, "the request's STASIS_WORKING_SET=0 was used");
    assert.equal(existsSync(workingSet), false, "no working set recorded");
    assert.match(log, /restore "knobs" with STASIS_WORKING_SET=0 from the request/);

    const on = await restore({});
    assert.ok(phase(on, "record-working-set"), "without it the daemon's own setting (on) records one");
    assert.ok(existsSync(workingSet));

    assert.ok(phase(await restore({}, "--prefetch", "images"), "working-set"), "a restore that prefetches reads it");
    const offAgain = await restore({ STASIS_WORKING_SET: "0" }, "--prefetch", "images");
    assert.equal(phase(offAgain, "working-set"), undefined, "and does not when its request says 0");

    // A bad value is refused before anything is sent, naming the knob.
    const bad = await stasis(["restore", "knobs", "--json"], { ...env, STASIS_WORKING_SET: "sometimes" });
    assert.equal(bad.code, 2);
    assert.equal(bad.json.error.code, "E_USAGE");
    assert.match(bad.json.error.message, /STASIS_WORKING_SET="sometimes"/);

    // A capture through the daemon gets its user's knobs too: with STASIS_IO_URING_FILTER=0 the daemon starts the
    // server without the filter, so a server that opens an io_uring holds one and the capture is refused.
    const ringPort = await freePort();
    const ring = `http://127.0.0.1:${ringPort}`;
    const unfiltered = await stasis(
      [
        "capture",
        "ring-off",
        "--json",
        "--ready-url",
        `${ring}/health`,
        "--canary-url",
        `${ring}/answer?q=ring`,
        "--",
        "python3",
        join(EXAMPLES, "slow_server.py"),
        "--port",
        String(ringPort),
        "--startup-seconds",
        "0",
        "--io-uring",
      ],
      { ...env, STASIS_IO_URING_FILTER: "0" },
    );
    assert.match(log, /capture "ring-off" with STASIS_IO_URING_FILTER=0 from the request/, "the daemon captured");
    // Where this kernel refuses io_uring to everyone the server held no ring to be refused for.
    if (unfiltered.code !== 0) assert.equal(unfiltered.json.error.code, "E_IO_URING", unfiltered.output);
    assert.equal(existsSync(join(home, "snapshots", "ring-off")), unfiltered.code === 0);
  } finally {
    daemon.kill("SIGTERM");
  }
  assert.equal(await exited, 0, log);
});
