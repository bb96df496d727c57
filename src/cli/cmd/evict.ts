import { relative } from "node:path";
import type { CliCommand } from "../registry.js";
import { str } from "../args.js";
import { formatBytes, table } from "../../text.js";

export const command: CliCommand = {
  args: ["[paths...]"],
  forms: ["evict --snapshot NAME [paths...] [options]"],
  help: [
    "Drops files (directories: every file under them) or a snapshot from the page cache (POSIX_FADV_DONTNEED),",
    "so that the next read comes from disk. Pages that a running process has mapped stay.",
  ].join("\n"),
  options: {
    snapshot: { type: "string", arg: "NAME", help: "the snapshot's files; paths then select files inside it" },
  },
  async run({ values, positionals, events }) {
    const { evict } = await import("../../commands/evict.js");
    const r = await evict({ paths: positionals, snapshot: str(values, "snapshot") }, events);
    const name = (p: string) => (r.snapshotDir ? relative(r.snapshotDir, p) : p);
    const stayed = r.total.residentBytesAfter;
    const text = [
      table([
        ["file", "size", "resident before", "after"],
        ...r.files.map((f) => [
          name(f.path),
          formatBytes(f.length),
          formatBytes(f.residentBytesBefore),
          formatBytes(f.residentBytesAfter),
        ]),
      ]),
      "",
      `evicted ${formatBytes(r.total.residentBytesBefore - stayed)} of ${r.total.files} files from the page cache` +
        (stayed > 0 ? `; ${formatBytes(stayed)} stayed (mapped by a running process)` : ""),
    ].join("\n");
    return { data: r, text };
  },
};
