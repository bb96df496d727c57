/**
 * Finds pipelines that can fail by themselves under `set -o pipefail`: a reader that stops reading early
 * (`grep -q`, `grep -m`, `head`, `sed ...q`, `awk ... exit`, `cmp`, `read`) leaves its writer to die of SIGPIPE
 * (exit 141) when the writer has more to say, and pipefail makes that the pipeline's status, whatever the reader
 * found. Set-up once stopped at "libnuma.so.1 is missing" that way (`ldconfig -p | grep -q ...`) with libnuma
 * installed. Capture the output first (`x=$(cmd)`, then `grep -q ... <<<"$x"`), or use a reader that reads to
 * the end (`grep -c`, `sed -n 1p`).
 *
 * @example
 *   earlyReaders("set -euo pipefail\nldconfig -p | grep -q numa\n") // [{ line: 2, reader: "grep -q numa" }]
 */
export function earlyReaders(script: string): { line: number; reader: string }[] {
  if (!/\bpipefail\b/.test(script)) return [];
  const found: { line: number; reader: string }[] = [];
  const lines = script.split("\n");
  for (let i = 0; i < lines.length; i++) {
    // A command continued over lines (trailing backslash) is read as one, reported at its first line.
    let text = lines[i]!;
    const first = i;
    while (text.endsWith("\\") && i + 1 < lines.length) text = text.slice(0, -1) + " " + lines[++i]!;
    for (const stage of pipedStages(text)) {
      if (leavesEarly(words(stage))) found.push({ line: first + 1, reader: stage.trim() });
    }
  }
  return found;
}

/**
 * Walks `s` as the shell reads it and calls `visit(i, depth)` at each character that is code (not quoted, not in a
 * comment), `depth` counting the `$(`, `(` and `"$(` it is inside; `visit` returning true stops the walk.
 */
function walk(s: string, visit: (i: number, depth: number) => boolean | void): void {
  const stack: string[] = []; // "'", '"', or "(" for a command substitution or subshell
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const top = stack.at(-1);
    if (top === "'") {
      if (c === "'") stack.pop();
    } else if (top === '"') {
      if (c === "\\") i++;
      else if (c === '"') stack.pop();
      else if (c === "$" && s[i + 1] === "(") {
        stack.push("(");
        i++;
      }
    } else if (c === "\\") i++;
    else if (c === "'" || c === '"') stack.push(c);
    else if (c === "#" && (i === 0 || /[\s;(]/.test(s[i - 1]!))) return;
    else if (c === "$" && s[i + 1] === "(") {
      stack.push("(");
      i++;
    } else if (c === "(") stack.push("(");
    else if (c === ")" && top === "(") {
      if (visit(i, stack.length)) return;
      stack.pop();
    } else if (visit(i, stack.filter((x) => x === "(").length)) return;
  }
}

/** The commands that read from a pipe (each right of a lone `|` that is code), up to where each ends. */
function pipedStages(line: string): string[] {
  const stages: string[] = [];
  walk(line, (i) => {
    if (line[i] === "|" && line[i + 1] !== "|" && line[i - 1] !== "|") stages.push(untilEnd(line.slice(i + 1)));
  });
  return stages;
}

/** `s` up to the end of its command: a `|`, `;`, `&` or closing `)` of its own level, or the end of the line. */
function untilEnd(s: string): string {
  let end = s.length;
  walk(s, (i, depth) => {
    if (depth === 0 && "|;&)".includes(s[i]!)) {
      end = i;
      return true;
    }
  });
  return s.slice(0, end);
}

/** A command's words, quotes removed (enough to see the command, its options and a sed or awk program). */
function words(cmd: string): string[] {
  return (cmd.match(/'[^']*'|"(?:\\.|[^"\\])*"|[^\s'"]+/g) ?? []).map((w) => w.replace(/^['"]|['"]$/g, ""));
}

function leavesEarly(w: string[]): boolean {
  // Skip what stands before the command: `{`, `(`, `!`, `command`, `env`, VAR=value.
  while (w.length && (/^[{(!]$/.test(w[0]!) || w[0] === "command" || w[0] === "env" || /^\w+=/.test(w[0]!))) w.shift();
  const [cmd = "", ...args] = w;
  const name = cmd.replace(/^\{|^\(/, "");
  if (["head", "cmp", "read", "true", ":"].includes(name)) return true;
  if (/^[ez]?[ef]?grep$/.test(name)) {
    return args.some((a) => /^-[A-Za-z]*[qlLm]/.test(a) || /^--(quiet|silent|max-count|files-with)/.test(a));
  }
  if (name === "sed") return args.some((a) => !a.startsWith("-") && /(^|[\s;}\d$/])q(\s*$|[\s;}\d])/.test(a));
  if (name === "awk" || name === "gawk" || name === "mawk") return args.some((a) => /\bexit\b/.test(a));
  return false;
}
