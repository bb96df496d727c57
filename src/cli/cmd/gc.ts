import type { CliCommand } from "../registry.js";
import { formatBytes } from "../../text.js";
import { num } from "../args.js";
import { endpointOption } from "./push.js";

export const command: CliCommand = {
  args: ["<s3://bucket/prefix>"],
  help: [
    "Removes from a store the chunks no snapshot there uses any more (a dry run unless --yes). Safe beside a",
    "push: chunks younger than the grace period stay, and so do those of a push under way (its index is",
    "written first, and again every 10 minutes); a push that never finished goes once its index is older",
    "than the grace period and an hour. See docs/remote.md",
  ].join("\n"),
  options: {
    endpoint: endpointOption,
    yes: { type: "boolean", help: "remove them (without it: only say what would go)" },
    "grace-hours": {
      type: "string",
      arg: "H",
      help: "keep chunks and unfinished pushes younger than this (default 24)",
    },
  },
  async run({ values, positionals, events }) {
    const { gcRemote, DEFAULT_GRACE_HOURS } = await import("../../remote/gc.js");
    const hours = num(values, "grace-hours", DEFAULT_GRACE_HOURS, { min: 0 });
    const r = await gcRemote(
      {
        store: positionals[0]!,
        yes: Boolean(values.yes),
        graceMs: hours * 3600_000,
        endpoint: values.endpoint as string | undefined,
      },
      events,
    );
    const what = `${r.removed} unused chunks (${formatBytes(r.bytesRemoved)})`;
    const text = [
      `${r.remote}: ${r.snapshots} snapshots use ${r.referenced} of ${r.chunks} chunks`,
      r.dryRun ? `would remove ${what}: run again with --yes to remove them` : `removed ${what}`,
      ...(r.young > 0 ? [`kept ${r.young} unused chunks younger than ${hours} h (a push may be under way)`] : []),
      ...(r.abandoned.length > 0
        ? [`${r.dryRun ? "would remove" : "removed"} unfinished pushes: ${r.abandoned.join(", ")}`]
        : []),
    ].join("\n");
    return { data: r, text };
  },
};
