import type { CliCommand } from "../registry.js";

export const command: CliCommand = {
  args: ["<id>"],
  help: [
    "Has the running `stasis serve` take a serving instance off the GPU and keep it parked: its engine asleep, its",
    "GPU state checkpointed, its tree stopped. The next restore of its snapshot through the daemon wakes it and",
    "checks the canary. Hibernate one model, restore another: the GPU changes hands. See docs/parking.md.",
  ].join("\n"),
  options: {},
  async run({ positionals }) {
    const { hibernate } = await import("../../commands/hibernate.js");
    const r = await hibernate({ id: positionals[0]! });
    return {
      data: r,
      text:
        `hibernated instance ${r.parked.id} ("${r.parked.snapshot}") in ${r.parked.parkMs.toFixed(0)} ms` +
        (r.phases.length > 0 ? ` (${r.phases.map((x) => `${x.name} ${Math.round(x.ms)} ms`).join(", ")})` : ""),
    };
  },
};
