import { StasisError } from "../errors.js";
import { fdTargets } from "../proc/tree.js";

/**
 * Refuses, before anything is frozen, a tree CRIU cannot dump: an io_uring instance (libuv under uvloop or
 * Node uses one unless UV_USE_IO_URING=0). Checking here gives a precise error instead of a failed dump.
 */
export async function refuseUndumpable(pids: number[]): Promise<void> {
  for (const pid of pids) {
    const targets = await fdTargets(pid);
    if (targets.some((t) => t.includes("io_uring"))) {
      throw new StasisError("E_IO_URING", `process ${pid} of the server holds an io_uring instance, which CRIU cannot dump`, {
        hint: "start the server with UV_USE_IO_URING=0 (stasis sets it; check the server does not override it) or disable io_uring in its runtime",
        details: { pid },
      });
    }
  }
}
