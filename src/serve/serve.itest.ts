/**
 * `stasis serve` for real (root, CRIU): with the daemon running, `stasis restore` hands it the work and the
 * restored server answers its canary; once the daemon is stopped (SIGTERM), its socket is gone and the same
 * command restores in its own process.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { startDaemon } from "../testing/daemon.js";

const { home, env, teardown } = tempHome();
after(() => teardown(1));

test("restore goes through a running `stasis serve`, and in-process once it is stopped", async () => {
  const { cap, base } = await captureExample("served", env, { startupSeconds: 0.3 });

  const socket = join(home, "stasisd.sock");
  // --pin-weights: the CPU example server stages no weights, so the flag must change nothing here.
  const daemon = await startDaemon(env, ["--pin-weights"], /listening on .*stasisd\.sock/);
  const log = daemon.log;
  try {
    const viaDaemon = await stasis(["restore", "served", "--json"], env);
    assert.equal(viaDaemon.code, 0, viaDaemon.output);
    assert.equal(viaDaemon.json.via, "daemon");
    assert.ok(
      viaDaemon.json.phases.some((p: { name: string }) => p.name === "criu-restore"),
      "the daemon's timeline came back",
    );
    assert.equal((await httpOk(`${base}/answer?q=served`)).body, cap.json.manifest.engine.canary.text);
    assert.match(log(), /restored "served" as instance/);
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
    assert.equal((log().match(/restored "served" as instance/g) ?? []).length, 2, log());

    // A daemon's error comes back as the CLI's own: code, hint and exit status.
    const missing = await stasis(["restore", "nothing-here", "--json"], env);
    assert.equal(missing.code, 3);
    assert.equal(missing.json.error.code, "E_SNAPSHOT_NOT_FOUND");
  } finally {
    await daemon.stop();
  }
  assert.equal(await daemon.exited, 0, log());
  assert.equal(existsSync(socket), false, "the daemon removed its socket");

  const inProcess = await stasis(["restore", "served", "--json"], env);
  assert.equal(inProcess.code, 0, inProcess.output);
  assert.equal(inProcess.json.via, "process");
  assert.equal((await httpOk(`${base}/answer?q=served`)).body, cap.json.manifest.engine.canary.text);
});
