import type { Config } from "../config/config.js";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { run, tail, describeExit } from "../proc/run.js";
import type { Criu } from "./locate.js";
import { dumpOptions } from "./options.js";
import { holdLinkRemapsScript } from "./kept-files.js";
import { PRIVATE_DIR, PRIVATE_FILE, PRIVATE_UMASK } from "../store/private.js";

export interface DumpResult {
  imagesDir: string;
  logPath: string;
  ms: number;
  options: string[];
}

/** Dumps the process tree rooted at `pid` into `imagesDir` (created), with the options a server needs. */
export async function criuDump(
  criu: Criu,
  pid: number,
  imagesDir: string,
  opts: {
    leaveRunning: boolean;
    /** CRIU's network lock (`Config.criuNetworkLock`). */
    networkLock: Config["criuNetworkLock"];
    logDir: string;
    timeoutMs?: number;
    /** Folders of files open under unlinked names: their link_remap files are held (kept-files.ts) under `tag`. */
    holdLinkRemaps?: { dirs: string[]; tag: string };
    /** Cancels the dump: CRIU is killed (the tree it froze is then the caller's to end) and E_INTERRUPTED thrown. */
    signal?: AbortSignal;
  },
): Promise<DumpResult> {
  await mkdir(imagesDir, { recursive: true, mode: PRIVATE_DIR });
  const options = dumpOptions({ leaveRunning: opts.leaveRunning, networkLock: opts.networkLock });
  const logPath = join(opts.logDir, "criu-dump.log");
  await writeFile(logPath, "", { mode: PRIVATE_FILE }); // CRIU truncates it and keeps its mode
  const args = ["dump", "-t", String(pid), "-D", imagesDir, "-o", logPath, "-v4", ...options];
  if (opts.holdLinkRemaps && opts.holdLinkRemaps.dirs.length > 0) {
    const script = join(opts.logDir, "criu-dump-action.sh");
    await writeFile(script, holdLinkRemapsScript(opts.holdLinkRemaps.dirs, opts.holdLinkRemaps.tag));
    await chmod(script, 0o700);
    args.push("--action-script", script);
  }
  const interrupted = () =>
    new StasisError("E_INTERRUPTED", `capture interrupted during the CRIU dump of process ${pid}: CRIU was stopped`, {
      hint: "nothing was kept, and the server was stopped; run the capture again",
      details: { pid, logPath },
    });
  if (opts.signal?.aborted) throw interrupted();
  // Every cancellation reaches CRIU: run() kills its process group on abort (CRIU runs in a group of its own, so a
  // terminal's Ctrl-C reaches only stasis, which must pass it on), and the dump is not taken for a success.
  // The images hold the server's memory (its secrets): CRIU writes them root's alone.
  const out = await run(criu.path, args, {
    timeoutMs: opts.timeoutMs ?? 600_000,
    logPath,
    signal: opts.signal,
    umask: PRIVATE_UMASK,
  });
  if (opts.signal?.aborted) throw interrupted();
  if (out.code !== 0 || out.timedOut) {
    const log = await readFile(logPath, "utf8").catch(() => "");
    throw new StasisError(
      "E_CRIU_DUMP",
      `criu dump of process ${pid} ${describeExit(out)}: ${firstError(log) ?? tail(out.stderr, 3)}`,
      {
        hint: `${hintFor(log)}see the full log: ${logPath}`,
        details: { pid, logPath, command: [criu.path, ...args].join(" ") },
      },
    );
  }
  return { imagesDir, logPath, ms: out.ms, options };
}

/** The first "Error (...)" line of a CRIU log, minus the harmless RLIMIT_NOFILE one. */
export function firstError(log: string): string | undefined {
  return log
    .split("\n")
    .find((l) => /Error \(/.test(l) && !/RLIMIT_NOFILE/.test(l))
    ?.replace(/^\([\d.]+\)\s*/, "")
    .trim();
}

/** Turns well-known CRIU failures into advice. */
export function hintFor(log: string): string {
  if (/io_uring/.test(log))
    return "the server uses io_uring, which CRIU cannot dump: start it with UV_USE_IO_URING=0; ";
  if (/Connected TCP socket|tcp.*established/i.test(log) && /external/i.test(log))
    return "a TCP connection to outside the process tree is open: close clients before capture; ";
  if (/Can't dump half of stream unix connection|unix.*external/i.test(log))
    return "a unix socket connects to something outside the tree; ";
  if (/bad size|has bad size/.test(log)) return "a file the server has open changed size since capture; ";
  if (/Address already in use|EADDRINUSE/.test(log))
    return "an address of the snapshot's is taken: another instance (or the original server) still listens on one of its ports; stop it first (`stasis ps`, `stasis stop`); ";
  return "";
}
