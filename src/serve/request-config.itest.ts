/**
 * The settings a user gives `stasis restore` reach the daemon that does the restore (root, CRIU): the daemon runs
 * with the working set on (its default), and `STASIS_WORKING_SET=0 stasis restore` through it records and reads
 * none, where the daemon's own environment used to decide alone. Then the same command without the variable
 * records one (so it was the request that turned it off), and a later restore reads it, unless the request says 0.
 * A capture through the daemon is the same: `STASIS_IO_URING_FILTER=0 stasis capture` starts its server unfiltered.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome, type CliRun } from "../testing/cli.js";
import { captureExample } from "../testing/example.js";
import { startDaemon } from "../testing/daemon.js";

const { home, env, teardown } = tempHome();
after(() => teardown(1));

const phase = (r: CliRun, name: string) => (r.json.phases as { name: string }[]).find((p) => p.name === name);

test("STASIS_WORKING_SET=0 stasis restore, done by `stasis serve`, restores without the working set", async () => {
  await captureExample("knobs", env, { startupSeconds: 0.3 });
  const workingSet = join(home, "snapshots", "knobs", "working-set.json");

  const daemon = await startDaemon(env);
  const log = daemon.log;
  const restore = async (knobs: Record<string, string>, ...args: string[]) => {
    const r = await stasis(["restore", "knobs", "--json", ...args], { ...env, ...knobs });
    assert.equal(r.code, 0, r.output);
    assert.equal(r.json.via, "daemon", "the daemon did the restore");
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
    return r;
  };
  try {
    const off = await restore({ STASIS_WORKING_SET: "0" });
    assert.equal(phase(off, "record-working-set"), undefined, "the request's STASIS_WORKING_SET=0 was used");
    assert.equal(existsSync(workingSet), false, "no working set recorded");
    assert.match(log(), /restore "knobs" with STASIS_WORKING_SET=0 from the request/);

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
    const { cap: unfiltered } = await captureExample(
      "ring-off",
      { ...env, STASIS_IO_URING_FILTER: "0" },
      { serverArgs: ["--io-uring"], mustSucceed: false },
    );
    assert.match(log(), /capture "ring-off" with STASIS_IO_URING_FILTER=0 from the request/, "the daemon captured");
    // Where this kernel refuses io_uring to everyone the server held no ring to be refused for.
    if (unfiltered.code !== 0) assert.equal(unfiltered.json.error.code, "E_IO_URING", unfiltered.output);
    assert.equal(existsSync(join(home, "snapshots", "ring-off")), unfiltered.code === 0);
  } finally {
    await daemon.stop();
  }
  assert.equal(await daemon.exited, 0, log());
});
