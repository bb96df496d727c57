import { relative } from "node:path";
import type { CliCommand } from "../registry.js";
import { str } from "../args.js";
import { formatBytes, table } from "../../text.js";

const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "-");

export const command: CliCommand = {
  args: ["[paths...]"],
  forms: ["residency --snapshot NAME [paths...] [options]"],
  help: [
    "How much of each file (directories: every file under them) or of a snapshot is in the page cache",
    "(cachestat; mincore before Linux 6.5).",
  ].join("\n"),
  options: {
    snapshot: { type: "string", arg: "NAME", help: "the snapshot's files; paths then select files inside it" },
  },
  async run({ values, positionals, events }) {
    const { residency } = await import("../../commands/residency.js");
    const r = await residency({ paths: positionals, snapshot: str(values, "snapshot") }, events);
    const name = (p: string) => (r.snapshotDir ? relative(r.snapshotDir, p) : p);
    const text = [
      table([
        ["file", "size", "resident", "%"],
        ...r.files.map((f) => [
          name(f.path),
          formatBytes(f.length),
          formatBytes(f.residentBytes),
          pct(f.residentBytes, f.length),
        ]),
      ]),
      "",
      `${r.snapshot ? `snapshot "${r.snapshot}": ` : ""}${formatBytes(r.total.residentBytes)} of ${formatBytes(r.total.size)} in ${r.total.files} files is in the page cache (${pct(r.total.residentBytes, r.total.size)})`,
    ].join("\n");
    return { data: r, text };
  },
};
