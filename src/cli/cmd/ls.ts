import type { CliCommand } from "../registry.js";
import { formatBytes, formatMs, table } from "../render/format.js";

export const command: CliCommand = {
  args: [],
  options: {},
  async run() {
    const { ls } = await import("../../commands/ls.js");
    const rows = await ls();
    if (rows.length === 0)
      return { data: { snapshots: rows }, text: "no snapshots (capture one with `stasis capture`)" };
    const text = table([
      ["name", "created", "engine", "size", "procs", "cold start", "command"],
      ...rows.map((r) =>
        r.error
          ? [r.name, "DAMAGED", "", "", "", "", r.error]
          : [
              r.name,
              (r.createdAt ?? "").replace("T", " ").slice(0, 19),
              r.engine ?? "",
              formatBytes(r.bytes ?? 0),
              `${r.processes}${r.cudaProcesses ? ` (${r.cudaProcesses} gpu)` : ""}`,
              r.coldStartMs !== undefined ? formatMs(r.coldStartMs) : "",
              (r.command ?? "").slice(0, 60),
            ],
      ),
    ]);
    return { data: { snapshots: rows }, text };
  },
};
