import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { StasisError } from "../errors.js";
import { readMaps } from "../proc/maps.js";
import { openFds, readStat } from "../proc/tree.js";

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
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean).join(" ");
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
