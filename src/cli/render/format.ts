/** Human formatting shared by every renderer. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatRate(bytes: number, ms: number): string {
  if (ms <= 0) return "-";
  return `${(bytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s`;
}

/** A plain text table: the first row is the header. Columns whose cells all look numeric align right. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  // A loop, not Math.max(...cells): a spread of 100,000 rows (a residency of /usr) overflows the call stack.
  const widths = rows[0]!.map((_, c) => rows.reduce((w, r) => Math.max(w, (r[c] ?? "").length), 0));
  const numeric = /^[-+]?[\d.,]+\s?(%|x|ms|s|B|KiB|MiB|GiB|TiB|GB\/s)?$/;
  const right = widths.map((_, c) => {
    const cells = rows.slice(1).map((r) => r[c] ?? "").filter((v) => v !== "");
    return cells.length > 0 && cells.every((v) => numeric.test(v));
  });
  return rows
    .map((r) =>
      r
        .map((cell, c) => (right[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
