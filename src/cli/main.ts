#!/usr/bin/env node
/**
 * The `stasis` command line: a thin layer that parses arguments, calls a command function, and renders the
 * result or the error. Commands are loaded lazily: `stasis --help` loads no FFI, CUDA or HTTP code.
 */
import { parseArgs } from "node:util";
import { COMMANDS, findCommand } from "./registry.js";
import { StasisError, asStasisError, exitStatus } from "../errors.js";
import { Events } from "../events.js";
import { attachRenderer } from "./render/progress.js";
import { VERSION } from "../version.js";

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "stasis: snapshot a warmed-up inference server once, restore it serving in about a second",
    "",
    "usage: stasis <command> [options]",
    "",
    "commands:",
    ...lines,
    "",
    "global options: --json (machine-readable output), --quiet (no progress), --help",
    "environment: STASIS_HOME (snapshot store and state; default /var/lib/stasis)",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" ? rest[0] : undefined;
    if (target) return main([target, "--help"]);
    process.stdout.write(usage() + "\n");
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`stasis ${VERSION}\n`);
    return 0;
  }
  const entry = findCommand(name);
  const json = rest.includes("--json");
  try {
    if (!entry) {
      throw new StasisError("E_USAGE", `unknown command "${name}"`, { hint: "run `stasis --help` for the list of commands" });
    }
    const cmd = await entry.load();
    // Everything after a bare `--` belongs to the command being wrapped (capture's server command line).
    const dashdash = rest.indexOf("--");
    const own = dashdash === -1 ? rest : rest.slice(0, dashdash);
    const passthrough = dashdash === -1 ? [] : rest.slice(dashdash + 1);
    if (own.includes("--help") || own.includes("-h")) {
      process.stdout.write(`usage: stasis ${cmd.usage}\n\n${entry.summary}\n${cmd.help ?? ""}\n`);
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({
        args: own,
        options: { json: { type: "boolean" }, quiet: { type: "boolean" }, ...cmd.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new StasisError("E_USAGE", (err as Error).message, { hint: `usage: stasis ${cmd.usage}` });
    }
    const events = new Events();
    const quiet = Boolean(parsed.values.quiet) || json;
    const detach = attachRenderer(events, { quiet, stream: process.stderr });
    try {
      const result = await cmd.run({
        values: parsed.values as Record<string, string | boolean | string[] | undefined>,
        positionals: parsed.positionals,
        passthrough,
        events,
        json,
      });
      detach();
      if (json) process.stdout.write(JSON.stringify(result.data, null, 2) + "\n");
      else if (result.text) process.stdout.write(result.text.endsWith("\n") ? result.text : result.text + "\n");
      return result.exitCode ?? 0;
    } finally {
      detach();
    }
  } catch (err) {
    const e = asStasisError(err);
    if (json) {
      process.stdout.write(JSON.stringify({ error: e.toJSON() }, null, 2) + "\n");
    } else {
      process.stderr.write(`stasis: error ${e.code}: ${e.message}\n`);
      if (e.hint) process.stderr.write(`  hint: ${e.hint}\n`);
      if (e.code === "E_INTERNAL" && e.cause instanceof Error && e.cause.stack) process.stderr.write(e.cause.stack + "\n");
    }
    return exitStatus(e.code);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`stasis: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
