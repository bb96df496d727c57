import type { CliCommand } from "../registry.js";
import { formatBytes, table } from "../../text.js";

export const command: CliCommand = {
  args: [],
  help: [
    "state: serving; capturing or restoring (a stasis process is at work on it); parked (restored ahead or",
    "hibernated, its tree stopped, held by `stasis serve`: `stasis park`, `stasis hibernate`); abandoned (that",
    "process died half-way: `stasis stop ID`, the next restore or the run's supervisor removes what it left);",
    "exited. memory: the host memory its process tree holds, resident (proportional).",
    'A running `stasis serve` answers when there is one (STASIS_NO_DAEMON=1: never); --json says which ("via").',
  ].join("\n"),
  options: { all: { type: "boolean", help: "include instances whose process has ended" } },
  async run({ values }) {
    const all = Boolean(values.all);
    const { daemonOr, listViaDaemon } = await import("../../serve/client.js");
    const { value: rows, via } = await daemonOr(
      () => listViaDaemon(all),
      async () => (await import("../../commands/ps.js")).ps({ all }),
    );
    if (rows.length === 0) return { data: { instances: rows, via }, text: "no running instances" };
    const text = table([
      ["id", "snapshot", "origin", "pid", "url", "state", "memory", "since"],
      ...rows.map((i) => [
        i.id,
        i.snapshot,
        i.origin,
        String(i.pid),
        i.url,
        i.status,
        i.memory ? `${formatBytes(i.memory.rssBytes)} (${formatBytes(i.memory.pssBytes)})` : "-",
        i.createdAt.replace("T", " ").slice(0, 19),
      ]),
    ]);
    return { data: { instances: rows, via }, text };
  },
};
