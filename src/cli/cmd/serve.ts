import type { CliCommand } from "../registry.js";
import { str } from "../args.js";
import { interruptSignal } from "../interrupt.js";

export const command: CliCommand = {
  args: [],
  help: [
    "Keeps stasis resident on a unix socket (default $STASIS_HOME/stasisd.sock, root only) until SIGINT or",
    "SIGTERM. `stasis restore` then hands its work to it (set STASIS_NO_DAEMON=1 to restore in-process), which",
    "saves Node's start-up and module loading on every restore. Restores run with the daemon's settings",
    "(STASIS_CRIU, STASIS_PREFILL_WORKERS, ...: docs/configuration.md), except those the restoring command's",
    "user set, which come with its request; each line it logs goes to standard error.",
  ].join("\n"),
  options: {
    socket: {
      type: "string",
      arg: "PATH",
      help: "listen here instead (a stale socket there is replaced; anything else is refused, never removed)",
    },
    "pin-weights": {
      type: "boolean",
      help: [
        "keep the weights of every snapshot it restores (the last two) as pinned host memory in a",
        "stager process that also keeps its CUDA context: a later restore's weights are then one",
        "host-to-GPU copy (no file reads, no start-up); the first restore reads the file, and the",
        "image is pinned after it, unless `stasis prefetch --snapshot NAME` (POST /v1/weights/pin)",
        "pinned it ahead. Costs their size in locked RAM and a CUDA context (~0.6 GB) on",
        "each GPU used (STASIS_PIN_WEIGHTS_MAX: how many it keeps). POST /v1/weights/release on",
        "the socket frees that locked RAM; the keepers stay up, holding none (docs/ARCHITECTURE.md)",
      ].join("\n"),
    },
    "warm-cuda": {
      type: "boolean",
      help: "keep one CUDA worker warm for all restores (cuInit and NVML done once; not yet measured on a GPU)",
    },
  },
  async run({ values, events, settings }) {
    const { signal, dispose } = interruptSignal();
    // The daemon's log: every line, to standard error, whatever --quiet says.
    const off = events.on((e) => {
      if (e.type === "log")
        process.stderr.write(`${new Date().toISOString()} ${e.level === "warn" ? "warning: " : ""}${e.message}\n`);
    });
    try {
      const { serve } = await import("../../serve/daemon.js");
      const pinWeights = Boolean(values["pin-weights"]);
      const warmCuda = Boolean(values["warm-cuda"]);
      const r = await serve({ socket: str(values, "socket"), signal, pinWeights, warmCuda, settings }, events);
      return { data: r, text: `stasis serve: stopped after ${r.restores} restore(s); removed ${r.socket}` };
    } finally {
      off();
      dispose();
    }
  },
};
