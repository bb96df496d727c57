import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { WORKER_THREADS, workerEnv } from "./driver.js";

/**
 * The CUDA worker's driver calls are koffi async calls, which run on libuv's thread pool: `calls` blocking calls
 * (usleep, as a lock or checkpoint blocks in the driver) made at once in a Node process with this environment; the
 * time they took. The same mechanism as src/native/libcuda.ts, on libc so that it runs without a GPU.
 */
async function parallelBlockingCalls(env: NodeJS.ProcessEnv, calls: number, ms: number): Promise<number> {
  const script = `
    import koffi from "koffi";
    const usleep = koffi.load("libc.so.6").func("int usleep(unsigned int)");
    const t0 = performance.now();
    await Promise.all(Array.from({ length: ${calls} }, () =>
      new Promise((resolve, reject) => usleep.async(${ms * 1000}, (e, r) => (e ? reject(e) : resolve(r))))));
    console.log(Math.round(performance.now() - t0));`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
    env,
    cwd: new URL("../../", import.meta.url),
  });
  return Number(stdout.trim());
}

test("the CUDA worker makes more than four driver calls at once (a TP=4 tree's checkpoint is not held to four)", async () => {
  const withoutSetting = { ...process.env };
  delete withoutSetting.UV_THREADPOOL_SIZE;
  // libuv's default pool runs 4 at a time: 12 calls of 300 ms take three rounds.
  assert.ok((await parallelBlockingCalls(withoutSetting, 12, 300)) >= 850, "the default pool holds calls to four");
  // The worker's environment: one round, as many as a tree of up to WORKER_THREADS CUDA processes needs.
  assert.ok((await parallelBlockingCalls(workerEnv(withoutSetting), 12, 300)) < 850);
  assert.equal(workerEnv({ UV_THREADPOOL_SIZE: "2" }).UV_THREADPOOL_SIZE, String(WORKER_THREADS));
});
