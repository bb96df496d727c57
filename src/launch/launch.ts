import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { StasisError } from "../errors.js";
import { withIoUringOff } from "./io-uring-off.js";

/** Variables that keep a server dumpable by CRIU, set on top of the caller's environment. */
export const DUMPABLE_ENV: Record<string, string> = {
  // libuv before 1.50 (under uvloop and Node) uses io_uring for file I/O unless told not to; CRIU cannot dump an
  // io_uring instance. Later libuv ignores it: the server also runs with io_uring_setup filtered (io-uring-off.ts).
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
  /** The environment to start from instead of this process's (a capture that `stasis serve` runs for a CLI). */
  baseEnv?: Record<string, string>;
  /** Start it under the filter that keeps io_uring from it (`Config.ioUringFilter`; io-uring-off.ts). */
  ioUringFilter: boolean;
  stdout: string;
  stderr: string;
  /** Called with the server's pid (its process group's id) as soon as it is spawned, before anything else runs. */
  spawned?: (pid: number) => void;
}

export interface Launched {
  /** Pid of the server: the root of the tree to snapshot, leader of its own session. */
  pid: number;
  /** Resolves when the server process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once the server process ended. */
  hasExited(): boolean;
  /** Lets stasis exit while the server runs on (it is referenced until then, so a wait on `exited` holds). */
  detach(): void;
}

/**
 * Starts a server the way CRIU can checkpoint it: leader of its own session (so no session or terminal
 * outside the tree is referenced), stdin from /dev/null, stdout/stderr to files (pipes to stasis would be
 * external to the tree), unable to open an io_uring instance (withIoUringOff). It runs in the machine's own PID
 * namespace: the CUDA driver names the threads it starts through /proc/<pid>/task/<tid>/comm, which only resolves
 * where /proc matches the process's PID namespace (cudaErrorOperatingSystem otherwise). Restores go into a PID
 * namespace of their own (see criu/restore.ts), so they never collide with live PIDs.
 */
export async function launch(opts: LaunchOptions): Promise<Launched> {
  // The server's output may hold what it was given (keys, prompts): root's alone, like the rest of the store.
  const out = openSync(opts.stdout, "a", 0o600);
  const err = openSync(opts.stderr, "a", 0o600);
  let child;
  try {
    const env = { ...(opts.baseEnv ?? process.env), ...DUMPABLE_ENV, ...opts.env };
    const [command, ...args] = withIoUringOff(opts.argv, opts.cwd, opts.ioUringFilter, env);
    child = spawn(command!, args, {
      cwd: opts.cwd,
      env,
      stdio: ["ignore", out, err],
      detached: true, // setsid(): the server leads its own session and process group
    });
  } finally {
    // The child has its own copies of these fds once spawned.
    closeSync(out);
    closeSync(err);
  }
  if (child.pid !== undefined) opts.spawned?.(child.pid);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", (e: NodeJS.ErrnoException) => {
      done = true;
      reject(
        new StasisError(
          e.code === "ENOENT" ? "E_TOOL_MISSING" : "E_SERVER_EXITED",
          `cannot start ${opts.argv[0]}: ${e.message}`,
          {
            hint:
              e.code === "ENOENT"
                ? `check the server's command: ${opts.argv.join(" ")}`
                : `its output is in ${opts.stderr}`,
          },
        ),
      );
    });
    child.on("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  exited.catch(() => {});
  if (child.pid === undefined) {
    await exited; // rejects with the spawn error
    throw new StasisError("E_SERVER_EXITED", `cannot start ${opts.argv[0]}`);
  }
  return { pid: child.pid, exited, hasExited: () => done, detach: () => child.unref() };
}
