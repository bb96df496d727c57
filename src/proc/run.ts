import { spawn, type SpawnOptions } from "node:child_process";
import { StasisError, type ErrorCode } from "../errors.js";

/** What a finished child process was: data, not a message. `describeFailure` formats it. */
export interface ProcessOutput {
  command: string;
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
  /** Where the child's own log went, when it writes one (criu -o), for the error's reader. */
  logPath?: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child (and its process group) after this many ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Extra fds handed to the child as fd 3, 4, ... */
  extraFds?: number[];
  input?: string;
  logPath?: string;
  /** The child's umask (else it inherits stasis's): what it creates, CRIU's images, is no more open than this. */
  umask?: number;
}

const TAIL_BYTES = 64 * 1024;

/**
 * Runs a command to completion, collecting its output. Never throws for a non-zero exit: the caller decides
 * what a failure means (see `check`). Throws only if the command cannot be started at all.
 */
export function run(command: string, args: string[], opts: RunOptions = {}): Promise<ProcessOutput> {
  const started = performance.now();
  const stdio: SpawnOptions["stdio"] = [
    opts.input === undefined ? "ignore" : "pipe",
    "pipe",
    "pipe",
    ...(opts.extraFds ?? []),
  ];
  return new Promise((resolve, reject) => {
    // detached: the child leads its own process group, so a timeout can kill everything it started.
    const start = () => spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio, detached: true });
    const child = withUmask(opts.umask, start);
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout?.on("data", (d: Buffer) => (stdout = keepTail(stdout + d.toString())));
    child.stderr?.on("data", (d: Buffer) => (stderr = keepTail(stderr + d.toString())));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const killGroup = () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    };
    const timer =
      opts.timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), killGroup()), opts.timeoutMs);
    const onAbort = () => killGroup();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.signal?.aborted) killGroup(); // aborted before it started: no abort event will come
    child.on("error", (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      const code = (err as NodeJS.ErrnoException).code;
      reject(
        new StasisError(code === "ENOENT" ? "E_TOOL_MISSING" : "E_IO", `cannot start ${command}: ${err.message}`, {
          cause: err,
          hint:
            code === "ENOENT"
              ? `install ${command} or put it on the PATH (\`stasis doctor\` checks the tools)`
              : undefined,
        }),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve({
        command,
        args,
        code,
        signal,
        stdout,
        stderr,
        ms: performance.now() - started,
        timedOut,
        logPath: opts.logPath,
      });
    });
  });
}

/**
 * Runs `start`, something synchronous that creates a file or a process (a spawn: the child inherits the umask at
 * fork; a unix socket's bind), under `mask`. Nothing else runs between setting and restoring it, so the rest of the
 * process keeps its own umask.
 */
export function withUmask<T>(mask: number | undefined, start: () => T): T {
  if (mask === undefined) return start();
  const before = process.umask(mask);
  try {
    return start();
  } finally {
    process.umask(before);
  }
}

function keepTail(s: string): string {
  return s.length > TAIL_BYTES ? s.slice(s.length - TAIL_BYTES) : s;
}

/** The last `lines` non-empty lines of a text, for error messages. */
export function tail(text: string, lines = 12): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-lines)
    .join("\n");
}

/** One line saying how a process ended: "exited with status 1", "killed by SIGKILL", "timed out after 5000 ms". */
export function describeExit(out: Pick<ProcessOutput, "code" | "signal" | "timedOut" | "ms">): string {
  if (out.timedOut) return `timed out after ${Math.round(out.ms)} ms`;
  if (out.signal) return `killed by ${out.signal}`;
  return `exited with status ${out.code}`;
}

/** Throws a StasisError carrying the process's output when it did not exit 0. */
export function check(out: ProcessOutput, code: ErrorCode, what: string, hint?: string): ProcessOutput {
  if (out.code === 0 && !out.timedOut) return out;
  const lines = tail(out.stderr || out.stdout, 6);
  throw new StasisError(code, `${what}: ${out.command} ${describeExit(out)}${lines ? `\n${lines}` : ""}`, {
    hint: hint ?? (out.logPath ? `see the full log: ${out.logPath}` : undefined),
    details: {
      command: [out.command, ...out.args].join(" "),
      code: out.code,
      signal: out.signal,
      logPath: out.logPath,
    },
  });
}
