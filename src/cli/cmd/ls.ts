import type { CliCommand } from "../registry.js";
import { formatBytes, formatMs, table } from "../../text.js";
import { endpointOption } from "./push.js";

export const command: CliCommand = {
  args: ["[s3://bucket/prefix]"],
  options: { endpoint: endpointOption },
  async run({ values, positionals }) {
    if (positionals[0] !== undefined) return remoteLs(positionals[0], values.endpoint as string | undefined);
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

async function remoteLs(url: string, endpoint: string | undefined) {
  const { listRemote } = await import("../../remote/list.js");
  const rows = await listRemote(url, { endpoint });
  if (rows.length === 0) return { data: { snapshots: rows }, text: `no snapshots in ${url}` };
  const text = table([
    ["name", "created", "engine", "size", "procs", "url"],
    ...rows.map((r) =>
      r.error
        ? [r.name, "INCOMPLETE", "", "", "", r.error]
        : [
            r.name,
            (r.createdAt ?? "").replace("T", " ").slice(0, 19),
            r.engine ?? "",
            formatBytes(r.bytes ?? 0),
            `${r.processes}${r.cudaProcesses ? ` (${r.cudaProcesses} gpu)` : ""}`,
            r.url,
          ],
    ),
  ]);
  return { data: { snapshots: rows }, text };
}
