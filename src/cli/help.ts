import { COMMANDS, type CliCommand } from "./registry.js";
import { GLOBAL_OPTIONS, optionsHelp, usageLine } from "./parse.js";

/** `stasis --help`: every command with its summary. */
export function usage(): string {
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
    `global options: ${Object.entries(GLOBAL_OPTIONS)
      .map(([n, s]) => `--${n} (${s.help.replace(/ \(.*$/, "")})`)
      .join(", ")}`,
    "`stasis <command> --help` shows a command's options",
    "environment: STASIS_HOME (snapshot store and state; default /var/lib/stasis); every setting: docs/configuration.md",
  ].join("\n");
}

/** A command's `--help`: usage generated from its arguments, then what it does, then its options. */
export function commandHelp(name: string, summary: string, cmd: CliCommand): string {
  return [
    `usage: ${usageLine(name, cmd)}`,
    ...(cmd.forms ?? []).map((f) => `       stasis ${f}`),
    "",
    summary,
    ...(cmd.help ? ["", cmd.help] : []),
    "",
    "options:",
    optionsHelp(cmd.options),
  ].join("\n");
}
