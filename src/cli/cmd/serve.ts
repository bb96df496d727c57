import type { CliCommand } from "../registry.js";
import { StasisError } from "../../errors.js";
import { num, oneOf, str } from "../args.js";
import { interruptSignal } from "../interrupt.js";
import { LOG_FORMATS } from "../../serve/log.js";

export const command: CliCommand = {
  args: [],
  help: [
    "Keeps stasis resident on a unix socket (default $STASIS_HOME/stasisd.sock, root only) until SIGINT or",
    "SIGTERM, serving its HTTP API (docs/api.md): list, stop, capture and restore instances, pin and release",
    "weights, Prometheus metrics at /metrics. `stasis restore`, `capture`, `ps` and `stop` then hand their work",
    "to it (set STASIS_NO_DAEMON=1 to work in-process), which saves Node's start-up and module loading on every",
    "restore. Restores and captures run with the daemon's settings (STASIS_CRIU, STASIS_WORKING_SET, ...:",
    "docs/configuration.md), except those the command's user set, which come with its request; each line it logs",
    "goes to standard error.",
  ].join("\n"),
  options: {
    socket: {
      type: "string",
      arg: "PATH",
      help: "listen here instead (a stale socket there is replaced; anything else is refused, never removed)",
    },
    listen: {
      type: "string",
      arg: "HOST:PORT",
      help: [
        "also serve the API on TCP (port 0: any free port, logged); needs --token-file:",
        "every request there must carry `Authorization: Bearer TOKEN`",
      ].join("\n"),
    },
    "token-file": {
      type: "string",
      arg: "FILE",
      help: "the bearer token for --listen: the file's first line, 16+ characters, mode 0600",
    },
    "log-format": {
      type: "string",
      arg: "text|json",
      help: [
        "text (default): the daemon's lines and one per request; json: one JSON object a",
        "line, also for every event of each capture and restore (progress ticks aside)",
      ].join("\n"),
    },
    "pin-weights": {
      type: "boolean",
      help: [
        "keep the weights of every snapshot it restores (the last two) as pinned host memory in a",
        "stager process that also keeps its CUDA context: a later restore's weights are then one",
        "host-to-GPU copy (no file reads, no start-up); the first restore reads the file, and the",
        "image is pinned after it, unless `stasis prefetch --snapshot NAME` (POST /v1/weights/pin)",
        "pinned it ahead. Costs their size in locked RAM and a CUDA context (~0.6 GB) on",
        "each GPU used (--pin-weights-max: how many it keeps). POST /v1/weights/release on",
        "the socket frees that locked RAM; the keepers stay up, holding none (docs/ARCHITECTURE.md)",
      ].join("\n"),
    },
    "pin-weights-max": {
      type: "string",
      arg: "N",
      help: "with --pin-weights: weights images each keeper keeps pinned, the least recently used freed (default 2)",
    },
    park: {
      type: "string",
      arg: "NAME[,NAME]",
      help: [
        "keep one instance of each of these snapshots parked from the start, as `stasis park NAME`",
        "would: restored up to the GPU, its tree stopped; a restore of it takes it (docs/parking.md)",
      ].join("\n"),
    },
    "warm-cuda": {
      type: "boolean",
      help: "keep one CUDA worker warm for all restores (cuInit and NVML done once; not yet measured on a GPU)",
    },
  },
  async run({ values, settings }) {
    const listen = str(values, "listen");
    const tokenFile = str(values, "token-file");
    if (listen !== undefined && tokenFile === undefined) {
      throw new StasisError(
        "E_USAGE",
        "--listen serves the API on TCP, where only a token guards it: --token-file is needed",
        {
          hint: "(umask 077; openssl rand -hex 32 > /etc/stasis/token) and pass --token-file /etc/stasis/token",
        },
      );
    }
    if (tokenFile !== undefined && listen === undefined) {
      throw new StasisError("E_USAGE", "--token-file is for --listen", {
        hint: "add --listen HOST:PORT, or drop --token-file",
      });
    }
    const format = oneOf(values, "log-format", LOG_FORMATS, "text");
    const { daemonLog } = await import("../../serve/log.js");
    const { parseListen, readToken } = await import("../../serve/auth.js");
    const tcp = listen === undefined ? undefined : { ...parseListen(listen), token: await readToken(tokenFile!) };
    const { signal, dispose } = interruptSignal();
    // The daemon's log: every line, to standard error, whatever --quiet says. Its own stream of events, not the
    // CLI's: the CLI's renderer would write its warnings a second time, and not as JSON.
    const log = daemonLog(format, (line) => process.stderr.write(line));
    const { Events } = await import("../../events.js");
    try {
      const { serve } = await import("../../serve/daemon.js");
      const pinWeights = Boolean(values["pin-weights"]);
      const pinWeightsMax = pinnedImages(values, pinWeights);
      const warmCuda = Boolean(values["warm-cuda"]);
      const park = (str(values, "park") ?? "").split(",").filter((n) => n !== "");
      const r = await serve(
        {
          ...{ socket: str(values, "socket"), signal, pinWeights, pinWeightsMax, warmCuda, settings, log, park },
          ...(tcp ? { tcp } : {}),
        },
        new Events(),
      );
      const text = `stasis serve: stopped after ${r.restores} restore(s) and ${r.captures} capture(s); removed ${r.socket}`;
      return { data: r, text };
    } finally {
      dispose();
    }
  },
};

/** --pin-weights-max: an integer from 1 to 64, and only beside --pin-weights (undefined: the keepers' default). */
function pinnedImages(values: Record<string, unknown>, pinWeights: boolean): number | undefined {
  if (values["pin-weights-max"] === undefined) return undefined;
  if (!pinWeights) {
    throw new StasisError("E_USAGE", "--pin-weights-max is for --pin-weights", {
      hint: "add --pin-weights, or drop --pin-weights-max",
    });
  }
  const n = num(values, "pin-weights-max", 2, { min: 1, max: 64 });
  if (!Number.isInteger(n)) {
    throw new StasisError("E_USAGE", `--pin-weights-max: expected an integer from 1 to 64, got "${String(n)}"`);
  }
  return n;
}
