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

/** The width of the terminal stdout is, or undefined when it is not one (piped output is never cut). */
export function terminalWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout): number | undefined {
  return stream.isTTY && stream.columns ? stream.columns : undefined;
}

/** `line` cut to `columns` (its end replaced by "…"); as it is without a width. */
export function fitLine(line: string, columns: number | undefined): string {
  if (columns === undefined || columns <= 1 || [...line].length < columns) return line;
  return [...line].slice(0, columns - 2).join("") + "…";
}

/**
 * A plain text table: the first row is the header. Columns whose cells all look numeric align right. On a
 * terminal, each line is cut to its width (`width`, by default the width of stdout; piped output is not cut).
 */
export function table(rows: string[][], width: number | undefined = terminalWidth()): string {
  if (rows.length === 0) return "";
  // A loop, not Math.max(...cells): a spread of 100,000 rows (a residency of /usr) overflows the call stack.
  const widths = rows[0]!.map((_, c) => rows.reduce((w, r) => Math.max(w, (r[c] ?? "").length), 0));
  const numeric = /^[-+]?[\d.,]+\s?(%|x|ms|s|B|KiB|MiB|GiB|TiB|GB\/s)?$/;
  const right = widths.map((_, c) => {
    const cells = rows
      .slice(1)
      .map((r) => r[c] ?? "")
      .filter((v) => v !== "");
    return cells.length > 0 && cells.every((v) => numeric.test(v));
  });
  return rows
    .map((r) =>
      r
        .map((cell, c) => (right[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => fitLine(line, width))
    .join("\n");
}
