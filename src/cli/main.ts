#!/usr/bin/env node
/**
 * The `stasis` command line: a thin layer that parses arguments, calls a command function, and renders the
 * result or the error. Commands are loaded lazily: `stasis --help` loads no FFI, CUDA or HTTP code.
 */
import { commandNames, findCommand } from "./registry.js";
import { StasisError, asStasisError, exitStatus } from "../errors.js";
import { Events } from "../events.js";
import { attachRenderer } from "./render/progress.js";
import { parseCommandLine } from "./parse.js";
import { commandHelp, usage } from "./help.js";
import { suggest } from "./suggest.js";
import { jsonDocument } from "./json.js";
import { VERSION } from "../version.js";
import { readConfig } from "../config/config.js";

export async function main(argv: string[]): Promise<number> {
  // `stasis --json ps` is `stasis ps --json`: global options may come before the command too.
  let lead = 0;
  while (argv[lead] === "--json" || argv[lead] === "--quiet") lead++;
  const [name, ...rest] =
    lead > 0 && lead < argv.length ? [argv[lead]!, ...argv.slice(0, lead), ...argv.slice(lead + 1)] : argv;
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
  // Everything after a bare `--` belongs to the command being wrapped (capture's server command line): a `--json`
  // there is the server's, never stasis's.
  const dashdash = rest.indexOf("--");
  const json = (dashdash === -1 ? rest : rest.slice(0, dashdash)).includes("--json");
  try {
    const entry = findCommand(name);
    if (!entry) {
      const near = name.startsWith("-") ? undefined : suggest(name, commandNames());
      throw new StasisError(
        "E_USAGE",
        name.startsWith("-") ? `expected a command first, got the option ${name}` : `unknown command "${name}"`,
        {
          hint: `${near ? `did you mean \`stasis ${near}\`? ` : ""}run \`stasis --help\` for the list of commands`,
        },
      );
    }
    const cmd = await entry.load();
    const parsed = parseCommandLine(name, rest, cmd.options, cmd);
    if (parsed.values.help) {
      process.stdout.write(commandHelp(name, entry.summary, cmd) + "\n");
      return 0;
    }
    // Read and checked once, before the command starts anything: a bad value is E_USAGE naming it.
    const settings = readConfig(process.env);
    const events = new Events();
    const quiet = Boolean(parsed.values.quiet) || json;
    const detach = attachRenderer(events, { quiet, stream: process.stderr });
    try {
      const result = await cmd.run({ ...parsed, events, json, config: settings.config, settings });
      detach();
      if (json) process.stdout.write(JSON.stringify(jsonDocument(name, result.data), null, 2) + "\n");
      else if (result.text) process.stdout.write(result.text.endsWith("\n") ? result.text : result.text + "\n");
      return result.exitCode ?? 0;
    } finally {
      detach();
    }
  } catch (err) {
    const e = asStasisError(err);
    if (json) {
      process.stdout.write(JSON.stringify(jsonDocument("error", { error: e.toJSON() }), null, 2) + "\n");
    } else {
      process.stderr.write(`stasis: error ${e.code}: ${e.message}\n`);
      if (e.hint) process.stderr.write(`  hint: ${e.hint}\n`);
      if (e.code === "E_INTERNAL" && e.cause instanceof Error && e.cause.stack)
        process.stderr.write(e.cause.stack + "\n");
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
