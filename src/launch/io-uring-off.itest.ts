/**
 * A server that opens an io_uring instance at start, as libuv 1.50 and later do at every loop start (uvloop 0.23,
 * whatever UV_USE_IO_URING says), through the real CLI and CRIU: under stasis its io_uring_setup fails, so it is
 * captured and restored; with the filter off it holds a ring and the capture is refused before anything is frozen.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome } from "../testing/cli.js";
import { captureExample } from "../testing/example.js";
import { httpOk } from "../engines/http-client.js";

const { home, env, teardown } = tempHome();
after(() => teardown(1));

/** The example server, opening an io_uring as it starts, captured through the CLI (a failed capture returned). */
const capture = (name: string, extraEnv: NodeJS.ProcessEnv = {}) =>
  captureExample(
    name,
    { ...env, ...extraEnv },
    { canary: "/answer?q=ring", serverArgs: ["--io-uring"], mustSucceed: false },
  );

test("a server opening an io_uring at start is captured and restored: under stasis it gets none", async () => {
  const { cap, port } = await capture("ring");
  assert.equal(cap.code, 0, cap.output);
  const res = await stasis(["restore", "ring", "--json"], env);
  assert.equal(res.code, 0, res.output);
  const stats = JSON.parse((await httpOk(`http://127.0.0.1:${port}/stats`)).body);
  assert.equal(stats.io_uring, false, "io_uring_setup failed for it, so it runs without a ring");
  assert.equal((await httpOk(`http://127.0.0.1:${port}/answer?q=ring`)).body, cap.json.manifest.engine.canary.text);
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});

test("with the filter off (STASIS_IO_URING_FILTER=0) it holds a ring: the capture is refused, naming it, and nothing is left", async (t) => {
  const { cap } = await capture("ring-off", { STASIS_IO_URING_FILTER: "0" });
  if (cap.code === 0) {
    // This kernel or its seccomp profile refuses io_uring to everyone: the server had no ring to hold.
    await stasis(["rm", "ring-off"], env);
    return t.skip("io_uring is unavailable on this machine");
  }
  assert.equal(cap.json.error.code, "E_IO_URING", cap.output);
  assert.match(
    cap.json.error.message,
    /\(python3\) of the server holds an io_uring instance \(fd \d+\).*slow_server\.py/,
  );
  assert.equal(existsSync(join(home, "snapshots", "ring-off")), false, "no snapshot");
  assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, [], "no server left running");
});
