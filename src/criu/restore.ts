import { openSync, closeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { run, tail, describeExit } from "../proc/run.js";
import type { Criu } from "./locate.js";
import { firstError, hintFor } from "./dump.js";
import { inheritKey, restoreOptions } from "./options.js";

export interface RestoreFiles {
  /** Paths of stdout/stderr as the images hold them. */
  capturedStdout: string;
  capturedStderr: string;
  /** Fresh files this instance's output goes to. */
  stdout: string;
  stderr: string;
}

export interface RestoreResult {
  /** Host pid of the restored tree's root. */
  pid: number;
  logPath: string;
  ms: number;
}

/**
 * Restores the tree in `imagesDir`, detached. CRIU's work files (log, pidfile) go to `workDir`, never into the
 * snapshot, so a snapshot can be restored many times, also at once. The root comes back in a new PID namespace.
 */
export async function criuRestore(
  criu: Criu,
  imagesDir: string,
  workDir: string,
  files: RestoreFiles,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<RestoreResult> {
  const logPath = join(workDir, "criu-restore.log");
  const pidfile = join(workDir, "criu-restore.pid");
  // The fds are opened here and passed as fd 3 and 4 of criu; closed in finally whatever happens, because
  // the child has its own copies once spawned.
  const outFd = openSync(files.stdout, "a");
  const errFd = files.stderr === files.stdout ? outFd : openSync(files.stderr, "a");
  try {
    const inherit =
      files.capturedStderr === files.capturedStdout
        ? ["--inherit-fd", `fd[3]:${inheritKey(files.capturedStdout)}`]
        : ["--inherit-fd", `fd[3]:${inheritKey(files.capturedStdout)}`, "--inherit-fd", `fd[4]:${inheritKey(files.capturedStderr)}`];
    const args = ["restore", "-D", imagesDir, "-W", workDir, "-o", logPath, "-v4", "--pidfile", pidfile, ...restoreOptions(), ...inherit];
    const out = await run(criu.path, args, {
      timeoutMs: opts.timeoutMs ?? 600_000,
      signal: opts.signal,
      extraFds: [outFd, errFd],
      logPath,
    });
    if (out.code !== 0 || out.timedOut) {
      const log = await readFile(logPath, "utf8").catch(() => "");
      throw new StasisError("E_CRIU_RESTORE", `criu restore ${describeExit(out)}: ${firstError(log) ?? tail(out.stderr, 3)}`, {
        hint: `${hintFor(log)}see the full log: ${logPath}`,
        details: { logPath, command: [criu.path, ...args].join(" ") },
      });
    }
    const pid = Number((await readFile(pidfile, "utf8")).trim());
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new StasisError("E_CRIU_RESTORE", `criu restore wrote no usable pid to ${pidfile}`, { hint: `see the full log: ${logPath}` });
    }
    return { pid, logPath, ms: out.ms };
  } finally {
    closeSync(outFd);
    if (errFd !== outFd) closeSync(errFd);
  }
}
