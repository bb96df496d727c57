import { StasisError } from "../errors.js";
import { suggest } from "./suggest.js";

/** One option of a command, as parsing and `--help` see it. */
export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  /** A one-letter alias: `-f`. */
  short?: string;
  /** The value's placeholder in help: URL, N, MODE. */
  arg?: string;
  /** What it does; lines after the first continue it in the help's second column. */
  help: string;
  /** Accepted but not listed (an old spelling kept for scripts). */
  hidden?: boolean;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** What a command accepts besides its options. */
export interface ArgumentSpec {
  /** Positionals as usage shows them: `<name>` required, `[path]` optional, `...` repeatable. */
  args: readonly string[];
  /** What may follow a bare `--` (capture: the server's command line); without it, `--` is refused. */
  passthrough?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: OptionValues;
  positionals: string[];
  passthrough: string[];
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  json: { type: "boolean", help: 'print one JSON document on stdout (its "schema" names its shape: docs/cli.md)' },
  quiet: { type: "boolean", help: "no progress on stderr" },
  help: { type: "boolean", short: "h", help: "this help" },
};

/**
 * Parses one command's arguments. Nothing after a bare `--` is read as stasis's own (it belongs to the wrapped
 * command); an unknown option, a missing value or a stray argument is a StasisError naming it, with the closest
 * known option as a hint.
 *
 * @example
 *   parseCommandLine("inspect", ["snap", "--verfy"], specs, { args: ["<name>"] });
 *   // StasisError E_USAGE: unknown option --verfy for `stasis inspect`; hint: did you mean --verify?
 */
export function parseCommandLine(
  command: string,
  argv: readonly string[],
  options: OptionSpecs,
  accepts: ArgumentSpec,
): Parsed {
  const specs: OptionSpecs = { ...GLOBAL_OPTIONS, ...options };
  const shorts = new Map(Object.entries(specs).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  const values: OptionValues = {};
  const positionals: string[] = [];
  const usageHint = `see \`stasis ${command} --help\``;
  let passthrough: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      if (!accepts.passthrough)
        throw new StasisError("E_USAGE", `\`stasis ${command}\` takes nothing after \`--\``, { hint: usageHint });
      passthrough = argv.slice(i + 1);
      break;
    }
    let name: string;
    let inline: string | undefined;
    if (token.startsWith("--")) {
      const eq = token.indexOf("=");
      name = eq === -1 ? token.slice(2) : token.slice(2, eq);
      inline = eq === -1 ? undefined : token.slice(eq + 1);
    } else if (token.length > 1 && token.startsWith("-") && !/^-\d/.test(token)) {
      const long = shorts.get(token.slice(1));
      if (!long) throw unknownOption(command, token, specs);
      name = long;
    } else {
      positionals.push(token);
      continue;
    }
    const spec = specs[name];
    if (!spec) throw unknownOption(command, token.split("=")[0]!, specs);
    if (spec.type === "boolean") {
      if (inline !== undefined)
        throw new StasisError("E_USAGE", `--${name} takes no value, got "${inline}"`, { hint: usageHint });
      values[name] = true;
      continue;
    }
    const value = inline ?? argv[i + 1];
    if (value === undefined || (inline === undefined && value.startsWith("--"))) {
      throw new StasisError("E_USAGE", `--${name} needs a value${spec.arg ? ` (${spec.arg})` : ""}`, {
        hint: usageHint,
      });
    }
    if (inline === undefined) i++;
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else values[name] = value;
  }
  if (!values.help) checkPositionals(command, positionals, accepts);
  return { values, positionals, passthrough };
}

function checkPositionals(command: string, positionals: string[], accepts: ArgumentSpec): void {
  const required = accepts.args.filter((a) => a.startsWith("<"));
  const variadic = accepts.args.some((a) => a.includes("..."));
  const hint = `usage: ${usageLine(command, accepts)}`;
  if (positionals.length < required.length) {
    throw new StasisError("E_USAGE", `missing ${required[positionals.length]}`, { hint });
  }
  if (!variadic && positionals.length > accepts.args.length) {
    const stray = positionals[accepts.args.length]!;
    throw new StasisError("E_USAGE", `unexpected argument "${stray}"`, {
      hint: accepts.passthrough ? `put the ${accepts.passthrough} after \`--\`; ${hint}` : hint,
    });
  }
}

function unknownOption(command: string, token: string, specs: OptionSpecs): StasisError {
  const long = token.startsWith("--");
  const word = token.replace(/^--?/, "");
  const names = Object.entries(specs)
    .filter(([, s]) => !s.hidden)
    .map(([n]) => n);
  const near = suggest(
    word,
    long ? names : [...names, ...Object.values(specs).flatMap((s) => (s.short ? [s.short] : []))],
  );
  const shown = near === undefined ? undefined : near.length === 1 ? `-${near}` : `--${near}`;
  return new StasisError("E_USAGE", `unknown option ${token} for \`stasis ${command}\``, {
    hint: `${shown ? `did you mean ${shown}? ` : ""}\`stasis ${command} --help\` lists its options`,
  });
}

/** `stasis restore <name> [options]`, from what the command accepts. */
export function usageLine(command: string, accepts: ArgumentSpec): string {
  return [
    "stasis",
    command,
    ...accepts.args,
    "[options]",
    ...(accepts.passthrough ? ["--", accepts.passthrough] : []),
  ].join(" ");
}

/** The options section of a command's help: one entry per option, its help text in a second column. */
export function optionsHelp(options: OptionSpecs): string {
  const entries = Object.entries({ ...options, ...GLOBAL_OPTIONS })
    .filter(([, s]) => !s.hidden)
    .map(([name, s]) => [`${s.short ? `-${s.short}, ` : ""}--${name}${s.arg ? ` ${s.arg}` : ""}`, s.help] as const);
  const width = Math.min(26, Math.max(...entries.map(([flag]) => flag.length)));
  return entries
    .flatMap(([flag, help]) => {
      const [first = "", ...rest] = help.split("\n");
      const head =
        flag.length > width ? [`  ${flag}`, `  ${" ".repeat(width)}  ${first}`] : [`  ${flag.padEnd(width)}  ${first}`];
      return [...head, ...rest.map((l) => `  ${" ".repeat(width)}  ${l}`)];
    })
    .join("\n");
}
