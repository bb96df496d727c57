import type { CliCommand } from "../registry.js";
import { num } from "../args.js";
import { interruptSignal } from "../interrupt.js";
import { renderTimeline } from "../render/timeline.js";
import { formatMs } from "../../text.js";
import { requestKnobs } from "../../config/config.js";
import { DEFAULT_MEMORY, DEFAULT_PREFETCH, DEFAULT_WEIGHTS } from "../../restore/modes.js";

export const command: CliCommand = {
  args: ["<id>", "<name>"],
  help: [
    "Has the running `stasis serve` hand the GPU from serving instance ID to snapshot NAME: ID is hibernated (its",
    "engine asleep, its GPU state checkpointed, its tree stopped) and NAME restored, from its parked or hibernated",
    "instance where the daemon holds one, else the ordinary way. Both start at once: while ID's engine goes to sleep,",
    "NAME's tree comes back (resumed, or CRIU) and its CUDA state too where the GPU has room; its weights and wake",
    "follow once that sleep has freed the GPU's memory, beside the rest of ID's hibernate. A restore of ID's",
    "snapshot later wakes ID. Prints NAME's restore timeline and when each side got where. See docs/parking.md.",
  ].join("\n"),
  options: {
    "ready-timeout": { type: "string", arg: "S", help: "seconds to wait for NAME's server (default 120)" },
  },
  async run({ values, positionals, events, settings }) {
    const { swap } = await import("../../commands/swap.js");
    const { signal, dispose } = interruptSignal();
    try {
      const [off, name] = [positionals[0]!, positionals[1]!];
      const r = await swap(
        {
          off,
          name,
          verify: "auto",
          prefetch: DEFAULT_PREFETCH,
          force: false,
          readyTimeoutMs: num(values, "ready-timeout", 120, { min: 1 }) * 1000,
          memory: DEFAULT_MEMORY,
          weights: DEFAULT_WEIGHTS,
          config: requestKnobs(settings),
        },
        events,
        { signal },
      );
      const on = r.restored;
      const offLine = r.off.hibernated
        ? `instance ${r.off.id} hibernated in ${formatMs(r.off.hibernated.parkMs)} (${r.off.phases
            .map((x) => `${x.name} ${Math.round(x.ms)} ms`)
            .join(", ")}); a restore of "${r.off.hibernated.snapshot}" wakes it`
        : `instance ${r.off.id} was ended, not hibernated: ${r.off.ended ?? "its hibernate failed"}`;
      const text = [
        renderTimeline(on.phases, on.readyMs),
        "",
        `swapped: "${name}" serving as instance ${on.instance.id} at ${on.instance.url}, canary matched, ` +
          `${formatMs(r.readyMs)} after the request (${r.off.id}'s engine asleep ${formatMs(r.handOverMs)} in)`,
        offLine,
      ].join("\n");
      return { data: r, text };
    } finally {
      dispose();
    }
  },
};
