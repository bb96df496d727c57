// Worker thread: hashes one chunk of one file per message. Reading and hashing here keeps the main thread
// free and spreads the work over all cores (crypto hashing is synchronous CPU work).
import { parentPort } from "node:worker_threads";
import { openSync, readSync, closeSync } from "node:fs";
import { createHash } from "node:crypto";

interface Job {
  id: number;
  path: string;
  offset: number;
  length: number;
}

let buffer = Buffer.allocUnsafe(0);

parentPort!.on("message", (job: Job) => {
  let fd = -1;
  try {
    if (buffer.length < job.length) buffer = Buffer.allocUnsafe(job.length);
    fd = openSync(job.path, "r");
    const hash = createHash("sha256");
    let done = 0;
    while (done < job.length) {
      const n = readSync(fd, buffer, done, job.length - done, job.offset + done);
      if (n === 0) break;
      done += n;
    }
    hash.update(buffer.subarray(0, done));
    parentPort!.postMessage({ id: job.id, sha256: hash.digest("hex"), bytes: done });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
  } finally {
    if (fd >= 0) closeSync(fd);
  }
});
