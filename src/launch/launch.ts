import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { StasisError } from "../errors.js";
import { childrenOf } from "../proc/tree.js";

/** Variables that keep a server dumpable by CRIU, set on top of the caller's environment. */
export const DUMPABLE_ENV: Record<string, string> = {
  // libuv (under uvloop and Node) uses io_uring for file I/O; CRIU cannot dump an io_uring instance.
  UV_USE_IO_URING: "0",
  // Compile worker pools would sit in the tree as extra processes holding pipes.
  TORCHINDUCTOR_COMPILE_THREADS: "1",
  PYTHONUNBUFFERED: "1",
};

export interface LaunchOptions {
  argv: string[];
  cwd: string;
  /** Added to the caller's environment, after DUMPABLE_ENV (so the user can override it). */
  env: Record<string, string>;
  stdout: string;
  stderr: string;
}

export interface Launched {
  /** Host pid of the tree's root: PID 1 of its own PID namespace, leader of its own session. */
  pid: number;
  /** Resolves with the `unshare` holder's exit: the tree ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once the tree ended. */
  hasExited(): boolean;
  /** Lets stasis exit while the server runs on (it is referenced until then, so a wait on `exited` holds). */
  detach(): void;
}

/**
 * Starts a server the way CRIU can checkpoint it and restore it many times:
 * - its own PID namespace (`unshare --pid --fork`), so a restore never collides with live PIDs and one
 *   snapshot can be restored again and again; the server is PID 1 there, and when it ends the kernel ends
 *   everything it started;
 * - its own session (`setsid` inside), so no session or terminal outside the tree is referenced;
 * - stdin from /dev/null and stdout/stderr to files (pipes to stasis would be external to the tree).
 * No --kill-child: the parent-death signal it sets would be restored too, and kill the restored server as
 * soon as CRIU (its parent at restore) exits.
 */
export async function launch(opts: LaunchOptions): Promise<Launched> {
  const out = openSync(opts.stdout, "a");
  const err = openSync(opts.stderr, "a");
  let holder;
  try {
    holder = spawn("unshare", ["--pid", "--fork", "setsid", ...opts.argv], {
      cwd: opts.cwd,
      env: { ...process.env, ...DUMPABLE_ENV, ...opts.env },
      stdio: ["ignore", out, err],
      detached: true,
    });
  } finally {
    // The child has its own copies of these fds once spawned.
    closeSync(out);
    closeSync(err);
  }
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    holder.on("error", (e) => {
      done = true;
      reject(
        new StasisError("E_TOOL_MISSING", `cannot start unshare: ${e.message}`, {
          hint: "stasis needs util-linux's unshare and setsid (apt-get install util-linux)",
        }),
      );
    });
    holder.on("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  exited.catch(() => {});
  const holderPid = holder.pid;
  if (holderPid === undefined) {
    await exited; // rejects with the spawn error
    throw new StasisError("E_TOOL_MISSING", "cannot start unshare");
  }
  // The server is unshare's only child; wait for it to appear.
  for (let i = 0; i < 500; i++) {
    const kids = await childrenOf(holderPid);
    if (kids.length > 0) return { pid: kids[0]!, exited, hasExited: () => done, detach: () => holder.unref() };
    if (done) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const how = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
  throw new StasisError("E_SERVER_EXITED", `the server exited as it started${how ? ` (${JSON.stringify(how)})` : ""}`, {
    hint: `check the command; its output is in ${opts.stderr}`,
  });
}
