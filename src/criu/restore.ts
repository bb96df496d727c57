import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { readFile, stat, truncate, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { tail } from "../proc/run.js";
import { childrenOf } from "../proc/tree.js";
import type { Criu } from "./locate.js";
import { firstError, hintFor } from "./dump.js";
import { inheritKey, restoreOptions } from "./options.js";
import { exists } from "../files.js";
import type { Config } from "../config/config.js";

/** The settings a CRIU restore reads. */
export type CriuRestoreSettings = Pick<Config, "criuNetworkLock">;

export interface RestoreFiles {
  /** Paths of stdout/stderr as the images hold them. */
  capturedStdout: string;
  capturedStderr: string;
  /** Fresh files this instance's output goes to. */
  stdout: string;
  stderr: string;
}

export interface RestoreResult {
  /** Host pid of the restored tree's root (inside its namespace it has the pid it had at capture). */
  pid: number;
  /** Host pid of the namespace's init (CRIU, waiting on the tree): killing it ends the whole instance. */
  nsInit: number;
  logPath: string;
  ms: number;
  /** With memory "parallel": what the lazy-pages daemon's workers copied in before the tree resumed. */
  prefill?: { bytes: number; workers: number; ms: number };
}

/** How CRIU brings back anonymous memory; see MEMORY_MODES in restore/modes.ts. */
export type CriuMemory = "copy" | "parallel" | "lazy";

/** unshare's arguments for a restore: CRIU as the init of a new PID namespace, /proc and mounts its own. */
export const UNSHARE_ARGS = ["--pid", "--fork", "--mount-proc", "--propagation", "slave"];

/** Run by CRIU at each stage of the restore; tells stasis the tree has resumed. */
const ACTION_SCRIPT = `#!/bin/sh
umask 077
[ "$CRTOOLS_SCRIPT_ACTION" = "post-resume" ] && : > "$0.resumed"
exit 0
`;

/**
 * Restores the tree in `imagesDir` into a PID namespace and mount namespace of its own (what CRIU's criu-ns
 * does): `unshare --pid --fork --mount-proc` starts CRIU as that namespace's init, CRIU gives the processes
 * the PIDs they had at capture (free there, whatever runs on the machine), and /proc is remounted to match,
 * which the CUDA driver needs. CRIU stays as the init, waiting on the tree; stasis returns once CRIU's
 * post-resume action has run. CRIU's work files (log, pidfile) go to `workDir`, never into the snapshot, so a
 * snapshot can be restored many times, also at once.
 */
export async function criuRestore(
  criu: Criu,
  imagesDir: string,
  workDir: string,
  files: RestoreFiles,
  settings: CriuRestoreSettings,
  opts: {
    timeoutMs?: number;
    signal?: AbortSignal;
    memory?: CriuMemory;
    started?: (pgid: number) => void;
    /** Leave the restored tree stopped (SIGSTOP): a parked instance, resumed later with SIGCONT (restore/park.ts). */
    leaveStopped?: boolean;
    /** The command line to run CRIU's under (netns/private-shm.ts: namespaced restores); default `unshare` with
     *  UNSHARE_ARGS. */
    command?: (criuArgv: string[]) => string[];
    /** Once the tree is restored, CRIU execs this in its place (`--exec-cmd`), as the namespace's init and the tree's
     *  parent (restore/reaper.ts: a --foreground restore learns the server's exit status from it). */
    execCmd?: string[];
  } = {},
): Promise<RestoreResult> {
  const started = performance.now();
  const memory = opts.memory ?? "copy";
  // The daemon and the restore both read CRIU_LAZY_PREFILL: the restore waits for the prefill only if asked.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CRIU_LAZY_PREFILL;
  if (memory === "parallel") env.CRIU_LAZY_PREFILL = String(defaultPrefillWorkers());
  const logPath = join(workDir, "criu-restore.log");
  const script = join(workDir, "criu-action.sh");
  await writeFile(script, ACTION_SCRIPT, { mode: 0o700 });
  // The instance's logs are root's alone (they may quote the server's memory): CRIU truncates a log and keeps its mode.
  for (const own of [logPath, join(workDir, "stats-restore")]) await writeFile(own, "", { mode: 0o600 });
  const inherit =
    files.capturedStderr === files.capturedStdout
      ? ["--inherit-fd", `fd[3]:${inheritKey(files.capturedStdout)}`]
      : [
          "--inherit-fd",
          `fd[3]:${inheritKey(files.capturedStdout)}`,
          "--inherit-fd",
          `fd[4]:${inheritKey(files.capturedStderr)}`,
        ];
  // With a prefill, the patched restore waits for the daemon's socket itself: both start at once.
  const lazy =
    memory === "copy"
      ? undefined
      : await startLazyPagesDaemon(criu, imagesDir, workDir, env, memory === "lazy", opts.started);
  const criuArgs = [
    "restore",
    "-D",
    imagesDir,
    "-W",
    workDir,
    "-o",
    logPath,
    `-v${LOG_LEVEL}`,
    "--pidfile",
    join(workDir, "criu-restore.pid"),
    "--action-script",
    script,
    ...restoreOptions(settings),
    ...(lazy ? ["--lazy-pages"] : []),
    ...(opts.leaveStopped ? ["--leave-stopped"] : []),
    ...inherit,
    ...(opts.execCmd ? ["--exec-cmd", "--", ...opts.execCmd] : []),
  ];
  // The fds are opened here and passed as fd 3 and 4 (unshare and CRIU inherit them); closed in finally,
  // because the child has its own copies once spawned.
  const outFd = openSync(files.stdout, "a", 0o600);
  const errFd = files.stderr === files.stdout ? outFd : openSync(files.stderr, "a", 0o600);
  // unshare's and CRIU's own output goes to a file, not a pipe: they outlive stasis.
  const ownOutput = join(workDir, "criu-restore.out");
  const ownFd = openSync(ownOutput, "a", 0o600);
  let holder;
  try {
    const argv = (opts.command ?? ((a) => ["unshare", ...UNSHARE_ARGS, ...a]))([criu.path, ...criuArgs]);
    holder = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", ownFd, ownFd, outFd, errFd],
      detached: true,
      cwd: workDir,
      env,
    });
  } catch (err) {
    lazy?.kill();
    throw err;
  } finally {
    closeSync(ownFd);
    closeSync(outFd);
    if (errFd !== outFd) closeSync(errFd);
  }
  // unshare leads its process group, CRIU (the namespace's init) is in it: its supervisor kills the group should
  // stasis die before the restore is done, and the kernel then ends the namespace.
  if (holder.pid !== undefined) opts.started?.(holder.pid);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  holder.on("exit", (code, signal) => (exit = { code, signal }));
  const spawnError = new Promise<Error>((resolve) => holder.on("error", resolve));
  let failed: Error | undefined;
  void spawnError.then((e) => (failed = e));

  const kill = () => {
    try {
      process.kill(-holder.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  const logLimit = LOG_LIMIT_BYTES;
  let logCheckedAt = 0;
  try {
    for (;;) {
      if (failed)
        throw new StasisError("E_TOOL_MISSING", `cannot start unshare: ${failed.message}`, {
          hint: "stasis needs util-linux's unshare",
        });
      if (await exists(script + ".resumed")) break;
      const restoreFailed = async (): Promise<StasisError> => {
        const log = await readFile(logPath, "utf8").catch(() => "");
        const output = await readFile(ownOutput, "utf8").catch(() => "");
        const how = exit
          ? exit.signal
            ? `was killed by ${exit.signal}`
            : `exited with status ${exit.code}`
          : "failed";
        return new StasisError(
          "E_CRIU_RESTORE",
          `criu restore ${how}: ${firstError(log) ?? (tail(output, 3) || "no error in its log")}`,
          {
            hint: `${hintFor(log)}see the full log: ${logPath}`,
            details: { logPath, command: [criu.path, ...criuArgs].join(" ") },
          },
        );
      };
      const daemonError = await lazy?.failure();
      if (daemonError) {
        // The lazy-pages daemon fails too when the restore does (its peer is gone): then the restore's own error
        // is the cause. It has written it by the time it exits, which follows within moments.
        for (let i = 0; i < 50 && !exit; i++) await new Promise((r) => setTimeout(r, 10));
        if (exit && firstError(await readFile(logPath, "utf8").catch(() => ""))) throw await restoreFailed();
        throw daemonError;
      }
      if (exit) throw await restoreFailed();
      if (opts.signal?.aborted) throw new StasisError("E_INTERRUPTED", "restore interrupted");
      if (Date.now() > deadline)
        throw new StasisError("E_CRIU_RESTORE", `criu restore did not finish within ${opts.timeoutMs ?? 600_000} ms`, {
          hint: `see the log: ${logPath}`,
        });
      if (Date.now() - logCheckedAt >= 100) {
        logCheckedAt = Date.now();
        const grown = await logOverLimit([logPath, join(workDir, "criu-lazy-pages.log")], logLimit);
        if (grown) {
          kill();
          lazy?.kill();
          // The start says what went wrong; the rest is the same lines again. Keep the start, give the disk back,
          // once CRIU is gone (a write still under way would leave the file as long again, sparse).
          for (let i = 0; i < 200 && !exit; i++) await new Promise((r) => setTimeout(r, 10));
          await truncate(grown, LOG_KEPT_BYTES).catch(() => undefined);
          const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
          const message = `criu restore stopped: its log ${grown} passed ${mib(logLimit)} (its start kept)`;
          throw new StasisError("E_CRIU_RESTORE", message, {
            hint: `CRIU was looping (a damaged image?); check the snapshot (\`stasis inspect --verify\`); see ${grown}`,
            details: { logPath: grown, limitBytes: logLimit },
          });
        }
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    // unshare -> CRIU (the namespace's init) -> the restored root.
    const nsInit = childrenOf(holder.pid!)[0];
    const pid = nsInit === undefined ? undefined : childrenOf(nsInit)[0];
    if (nsInit === undefined || pid === undefined) {
      throw new StasisError("E_CRIU_RESTORE", "criu reported the tree resumed, but it is not there", {
        hint: `see the log: ${logPath}`,
      });
    }
    // CRIU and unshare stay as the namespace's keepers; stasis must be free to exit.
    holder.unref();
    const ms = performance.now() - started;
    if (memory !== "parallel") return { pid, nsInit, logPath, ms };
    const prefill = parsePrefill(await readFile(join(workDir, "criu-lazy-pages.log"), "utf8").catch(() => ""));
    return { pid, nsInit, logPath, ms, ...(prefill ? { prefill } : {}) };
  } catch (err) {
    // Invariant: a failed restore leaves nothing running.
    kill();
    lazy?.kill();
    throw err;
  }
}

/**
 * The most a restore's CRIU log may grow to: a normal restore writes a few MB at -v4; one that passes 256 MiB is
 * looping (a damaged image made CRIU retry for ever, filling the disk). Past it the restore is stopped, and the log
 * cut back to its first LOG_KEPT_BYTES (where the first error is).
 */
const LOG_LIMIT_BYTES = 256 * 2 ** 20;
const LOG_KEPT_BYTES = 16 * 2 ** 20;

/** The first of `logs` larger than `limit` bytes, if any. */
async function logOverLimit(logs: string[], limit: number): Promise<string | undefined> {
  for (const log of logs) if (((await stat(log).catch(() => undefined))?.size ?? 0) > limit) return log;
  return undefined;
}

/** CRIU's verbosity for restores. Level 4 timestamps every step, which is what finding a slow restore needs. */
const LOG_LEVEL = 4;

/**
 * The prefill's workers (`--memory parallel`): one per core, at most 16 (more would not pay: the copy is already a
 * small part of a restore). Why: docs/decisions/0001-criu-memory.md.
 */
export function defaultPrefillWorkers(): number {
  return Math.max(1, Math.min(16, availableParallelism()));
}

/** The lazy-pages daemon's own account of a prefill: "prefill: B bytes (P pages) with N workers in T ms". */
export function parsePrefill(log: string): { bytes: number; workers: number; ms: number } | undefined {
  const m = /prefill: (\d+) bytes \(\d+ pages\) with (\d+) workers in (\d+) ms/.exec(log);
  return m ? { bytes: Number(m[1]), workers: Number(m[2]), ms: Number(m[3]) } : undefined;
}

/**
 * `criu lazy-pages`: the daemon that serves the restored tree's anonymous memory on first touch (userfaultfd)
 * and pushes the rest in the background, so `criu restore --lazy-pages` returns without copying the pages.
 * It listens on `lazy-pages.socket` in the shared work directory, which must exist before an unpatched
 * restore starts (`waitForSocket`), and exits by itself once every page is in place. `failure()` gives the
 * error once it has exited unsuccessfully.
 */
async function startLazyPagesDaemon(
  criu: Criu,
  imagesDir: string,
  workDir: string,
  env: NodeJS.ProcessEnv,
  waitForSocket: boolean,
  started?: (pgid: number) => void,
): Promise<{ kill: () => void; failure: () => Promise<StasisError | undefined> }> {
  const socket = join(workDir, "lazy-pages.socket");
  const out = openSync(join(workDir, "criu-lazy-pages.out"), "a", 0o600);
  await writeFile(join(workDir, "criu-lazy-pages.log"), "", { mode: 0o600 });
  let daemon;
  try {
    daemon = spawn(
      criu.path,
      ["lazy-pages", "-D", imagesDir, "-W", workDir, "-o", join(workDir, "criu-lazy-pages.log"), `-v${LOG_LEVEL}`],
      {
        stdio: ["ignore", out, out],
        detached: true,
        cwd: workDir,
        env,
      },
    );
  } finally {
    closeSync(out);
  }
  if (daemon.pid !== undefined) started?.(daemon.pid);
  let exited: number | null | undefined;
  daemon.on("exit", (code) => (exited = code));
  daemon.on("error", () => (exited = -1));
  const kill = () => {
    try {
      process.kill(daemon.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
  };
  const error = async (what: string) => {
    const log = await readFile(join(workDir, "criu-lazy-pages.log"), "utf8").catch(() => "");
    return new StasisError("E_CRIU_RESTORE", `criu lazy-pages ${what}: ${firstError(log) ?? `exit status ${exited}`}`, {
      hint: `lazy and parallel restores need userfaultfd (\`criu check --feature uffd-noncoop\`); see ${join(workDir, "criu-lazy-pages.log")}`,
    });
  };
  const failure = async () => (exited !== undefined && exited !== 0 ? error("failed") : undefined);
  const deadline = Date.now() + 10_000;
  while (waitForSocket && !(await exists(socket))) {
    if (exited !== undefined || Date.now() > deadline) {
      kill();
      throw await error(exited !== undefined ? "did not start" : "did not start (no socket within 10 s)");
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  daemon.unref();
  return { kill, failure };
}
