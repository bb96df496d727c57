import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { StasisError } from "../errors.js";
import { stasisHome } from "../home.js";
import { readMaps } from "../proc/maps.js";
import { openFds, readStat } from "../proc/tree.js";
import { isVllmServer, vllmCommandProblems } from "../engines/vllm-command.js";
import { refusePortTaken } from "./server-guard.js";
import { prepareHome } from "../store/home-guard.js";

const IO_URING = "anon_inode:[io_uring]";

/**
 * Refuses, before anything is frozen, a tree CRIU cannot dump: an io_uring instance (libuv under uvloop or
 * Node uses one unless UV_USE_IO_URING=0). Checking here gives a precise error instead of a failed dump: which
 * process (its command line), which fds, and which of its libraries can make one.
 */
export async function refuseUndumpable(pids: number[]): Promise<void> {
  for (const pid of pids) {
    const fds = (await openFds(pid)).filter((t) => t.target === IO_URING).map((t) => t.fd);
    if (fds.length === 0) continue;
    const comm = (await readStat(pid))?.comm ?? "?";
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""))
      .split("\0")
      .filter(Boolean)
      .join(" ");
    const shown = cmdline.replace(/\s+/g, " ");
    const libraries = await uringLibraries(pid);
    throw new StasisError(
      "E_IO_URING",
      `process ${pid} (${comm}) of the server holds an io_uring instance (fd ${fds.join(", ")}), which CRIU cannot dump` +
        (shown ? `: ${shown.length > 160 ? `${shown.slice(0, 160)}...` : shown}` : "") +
        (libraries.length > 0 ? `; it has loaded ${libraries.join(", ")}` : ""),
      {
        hint:
          "stasis starts servers with io_uring_setup failing (a seccomp filter, unless STASIS_IO_URING_FILTER=0 or there is no python3 " +
          "on the PATH; `stasis doctor` says) and UV_USE_IO_URING=0; this one got a ring anyway: turn the filter back on, or for " +
          "libuv 1.50+ (uvloop 0.23, which opens one at every loop start) without it, install uvloop<0.23 in the server's environment",
        details: { pid, comm, cmdline, fds, libraries },
      },
    );
  }
}

/** The libraries mapped into `pid` that make io_uring instances (liburing, libuv and what bundles it). */
async function uringLibraries(pid: number): Promise<string[]> {
  const paths = (await readMaps(pid)).map((m) => m.path).filter((path) => /liburing|libuv|uvloop|libcufile/.test(path));
  return [...new Set(paths.map((path) => basename(path)))].sort();
}

/** What `checkBeforeLaunch` looks at: the capture's own options. */
export interface LaunchPlan {
  engine: "http" | "vllm";
  argv: string[];
  /** Set for the server on top of stasis's environment. */
  env: Record<string, string>;
  /** The environment the server starts from, when not stasis's (capture.ts's baseEnv). */
  baseEnv?: Record<string, string>;
  readyUrl: string;
  /** The canary the user named, if any. */
  canary?: unknown;
  allowFullImage?: boolean;
}

/**
 * Every check of a capture that can fail before the server is launched, so that a mistake costs seconds, not a
 * model load: the command line (an http capture's canary; a vLLM server's sleep-mode flags, environment and
 * worker extension), then root, a writable store, and the ready URL's port free. `uid` and `home` are injectable.
 */
export async function checkBeforeLaunch(
  plan: LaunchPlan,
  deps: { uid?: number; home?: string; warn?: (message: string) => void } = {},
): Promise<void> {
  refuseMissingCanary(plan);
  refuseVllmWithoutSleep(plan);
  refuseNonRoot(deps.uid ?? process.getuid?.() ?? 0);
  // The store: usable and root's alone (created, or tightened, here), else E_STORE_UNUSABLE at once.
  await prepareHome(deps.warn, deps.home ?? stasisHome());
  await refusePortTaken(plan.readyUrl);
}

function refuseMissingCanary(plan: LaunchPlan): void {
  if (plan.engine !== "http" || plan.canary !== undefined) return;
  throw new StasisError("E_USAGE", "an http capture needs a canary request (--canary-url)", {
    hint:
      "pass --canary-url URL (and --canary-body JSON for a POST) on the server you capture: its answer is " +
      "recorded now and must be the same after every restore; or --engine vllm for a vLLM-compatible server " +
      "(its canary is a greedy completion)",
  });
}

function refuseVllmWithoutSleep(plan: LaunchPlan): void {
  if (plan.engine !== "vllm" || plan.allowFullImage || !isVllmServer(plan.argv)) return;
  const problems = vllmCommandProblems(plan.argv, { ...(plan.baseEnv ?? process.env), ...plan.env });
  if (problems.length === 0) return;
  throw new StasisError(
    "E_USAGE",
    `the vLLM server cannot be captured asleep at level 2: its command lacks ${problems.map((x) => x.missing).join(", ")}`,
    {
      hint:
        `${problems.map((x) => x.add).join("; ")}. Or pass --allow-full-image to keep its weights and KV cache ` +
        "in the image (vLLM on the CPU, which has no sleep mode)",
      details: { missing: problems.map((p) => p.missing) },
    },
  );
}

function refuseNonRoot(uid: number): void {
  if (uid === 0) return;
  throw new StasisError("E_PERMISSION", `capture needs root (running as uid ${uid})`, {
    hint: "CRIU dumps other processes' memory and the CUDA checkpoint needs root: run it with sudo, as root",
  });
}
