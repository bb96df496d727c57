#!/usr/bin/env node
// Writes docs/configuration.md from the settings' schema (src/config/knobs.ts, src/config/internal.ts), and the
// table of settings between `<!-- config:table -->` and `<!-- config:end -->` in every Markdown file of the
// repository's top level and docs/ that has those markers. Run after `npm run build`; `--check` writes nothing and
// exits 1 naming the files that differ (src/config/docs.test.ts runs it so).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const START = "<!-- config:table -->";
const END = "<!-- config:end -->";
const cell = (s) => String(s).replaceAll("|", "\\|");
const shown = (k) =>
  k.defaultText ??
  (k.default === undefined ? "none" : typeof k.default === "boolean" ? (k.default ? "1" : "0") : String(k.default));

/** The user's settings as a Markdown table. */
export function table(KNOBS) {
  const rows = Object.values(KNOBS).map(
    (k) =>
      `| \`${k.env}\` | ${cell(shown(k))} | ${cell(k.doc)} | ${cell(k.expected)} | ${k.for}${k.perRequest ? " (sent to `stasis serve`)" : ""} |`,
  );
  return ["| variable | default | what it sets | value | read by |", "| --- | --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

/** docs/configuration.md, whole. */
export function configurationDoc(KNOBS, INTERNAL, REMOVED = []) {
  const internal = INTERNAL.map((v) => `| \`${v.env}\` | ${v.readBy} | ${cell(v.doc)} |`);
  const removed = REMOVED.map((v) => `| \`${v.env}\` | ${cell(v.instead)} |`);
  return [
    "# Configuration",
    "",
    "<!-- Written by scripts/gen-config-docs.mjs from src/config/knobs.ts and src/config/internal.ts: edit those. -->",
    "",
    "stasis reads its settings from `STASIS_*` environment variables, once, as a command starts",
    "(`src/config/`). A value that is not one the setting takes is an error (`E_USAGE`) naming the variable, the",
    "value and what was expected; an empty variable counts as unset. `stasis doctor` (and `stasis doctor --json`)",
    "shows each setting's effective value and where it came from (`default` or `env`), and warns of a `STASIS_*`",
    "variable set that is none of them.",
    "",
    "A capture or restore done by `stasis serve` runs with the daemon's settings, except the ones marked *sent to",
    "`stasis serve`*: those the command's user set travel with its request and win for that capture or restore",
    "(source `request`; the daemon logs them). So `STASIS_WORKING_SET=0 stasis restore NAME` restores without the",
    "working set whether or not a daemon does the work.",
    "",
    START,
    table(KNOBS),
    END,
    "",
    "## Not settings",
    "",
    "These variables are read by the tests, the set-up scripts, or the engine side (for measuring alternatives;",
    "`python/stasis_engine/config.py`), not by stasis's commands. They are not for production use.",
    "",
    "| variable | read by | what it does |",
    "| --- | --- | --- |",
    ...internal,
    "",
    "## Removed",
    "",
    "Settings stasis no longer reads, and what took their place. `stasis doctor` warns of any `STASIS_*` variable set",
    "that stasis does not read, naming these.",
    "",
    "| variable | instead |",
    "| --- | --- |",
    ...removed,
    "",
  ].join("\n");
}

/** `text` with the table put between every pair of markers. */
export function withTable(text, KNOBS) {
  const parts = text.split(START);
  return parts
    .map((part, i) => {
      if (i === 0) return part;
      const end = part.indexOf(END);
      if (end < 0) throw new Error(`${START} without ${END}`);
      return `\n${table(KNOBS)}\n${part.slice(end)}`;
    })
    .join(START);
}

/** Every file's wanted text (path -> text), under `root`, from the schema compiled into `root`/dist. */
export async function wanted(root, dist = root) {
  const { KNOBS } = await import(pathToFileURL(join(dist, "dist/config/knobs.js")).href);
  const { INTERNAL, REMOVED } = await import(pathToFileURL(join(dist, "dist/config/internal.js")).href);
  const out = new Map([[join(root, "docs", "configuration.md"), configurationDoc(KNOBS, INTERNAL, REMOVED)]]);
  for (const dir of [root, join(root, "docs")]) {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (!name.endsWith(".md") || out.has(path)) continue;
      const text = readFileSync(path, "utf8");
      if (text.includes(START)) out.set(path, withTable(text, KNOBS));
    }
  }
  return out;
}

/** The files under `root` whose text is not what the schema makes of it. */
export async function staleFiles(root, dist = root) {
  const stale = [];
  for (const [path, text] of await wanted(root, dist)) {
    let now;
    try {
      now = readFileSync(path, "utf8");
    } catch {
      now = undefined;
    }
    if (now !== text) stale.push(path);
  }
  return stale;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  if (process.argv.includes("--check")) {
    const stale = await staleFiles(root);
    if (stale.length > 0) {
      console.error(`stale (run npm run build && node scripts/gen-config-docs.mjs): ${stale.join(", ")}`);
      process.exit(1);
    }
  } else {
    for (const [path, text] of await wanted(root)) writeFileSync(path, text);
    console.log("wrote docs/configuration.md and the tables between config markers");
  }
}
