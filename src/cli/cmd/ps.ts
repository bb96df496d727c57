import type { CliCommand } from "../registry.js";
import { table } from "../../text.js";

export const command: CliCommand = {
  args: [],
  help: [
    "state: serving; capturing or restoring (a stasis process is at work on it); abandoned (that process died",
    "half-way: `stasis stop ID`, the next restore or the run's supervisor removes what it left); exited.",
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
      ["id", "snapshot", "origin", "pid", "url", "state", "since"],
      ...rows.map((i) => [
        i.id,
        i.snapshot,
        i.origin,
        String(i.pid),
        i.url,
        i.status,
        i.createdAt.replace("T", " ").slice(0, 19),
      ]),
    ]);
    return { data: { instances: rows, via }, text };
  },
};
