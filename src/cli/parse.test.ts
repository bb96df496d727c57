import { test } from "node:test";
import assert from "node:assert/strict";
import { optionsHelp, parseCommandLine, usageLine, type OptionSpecs } from "./parse.js";
import { StasisError } from "../errors.js";

const OPTIONS: OptionSpecs = {
  verify: { type: "string", arg: "MODE", help: "how to verify\nsecond line" },
  force: { type: "boolean", help: "force it" },
  env: { type: "string", multiple: true, arg: "K=V", help: "repeatable" },
  follow: { type: "boolean", short: "f", help: "follow" },
  old: { type: "boolean", hidden: true, help: "an old spelling" },
};

const usage = (fn: () => unknown, message: RegExp, hint?: RegExp) =>
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StasisError, String(err));
    assert.equal(err.code, "E_USAGE");
    assert.match(err.message, message);
    if (hint) assert.match(err.hint ?? "", hint);
    return true;
  });

test("options, values, repeats, short flags and positionals are read", () => {
  const p = parseCommandLine(
    "restore",
    ["snap", "--verify", "full", "--force", "--env", "A=1", "--env=B=2", "-f", "--old"],
    OPTIONS,
    { args: ["<name>"] },
  );
  assert.deepEqual(p.values, { verify: "full", force: true, env: ["A=1", "B=2"], follow: true, old: true });
  assert.deepEqual(p.positionals, ["snap"]);
});

test("an unknown option is stasis's own error with the closest option, never Node's parse error", () => {
  usage(
    () => parseCommandLine("restore", ["snap", "--verfy", "full"], OPTIONS, { args: ["<name>"] }),
    /^unknown option --verfy for `stasis restore`$/,
    /did you mean --verify\?/,
  );
  usage(
    () => parseCommandLine("restore", ["snap", "--jsn"], OPTIONS, { args: ["<name>"] }),
    /unknown option --jsn/,
    /did you mean --json\?/,
  );
  usage(() => parseCommandLine("restore", ["snap", "-x"], OPTIONS, { args: ["<name>"] }), /unknown option -x/);
  usage(
    () => parseCommandLine("restore", ["snap", "--od"], OPTIONS, { args: ["<name>"] }),
    /unknown option --od/,
    /^`stasis restore --help`/,
  );
});

test("a missing value, a value given to a flag, and stray arguments are refused, naming them", () => {
  usage(
    () => parseCommandLine("restore", ["snap", "--verify"], OPTIONS, { args: ["<name>"] }),
    /^--verify needs a value \(MODE\)$/,
  );
  usage(
    () => parseCommandLine("restore", ["snap", "--verify", "--force"], OPTIONS, { args: ["<name>"] }),
    /--verify needs a value/,
  );
  usage(
    () => parseCommandLine("restore", ["snap", "--force=yes"], OPTIONS, { args: ["<name>"] }),
    /--force takes no value, got "yes"/,
  );
  usage(
    () => parseCommandLine("restore", ["snap", "other"], OPTIONS, { args: ["<name>"] }),
    /^unexpected argument "other"$/,
    /usage: stasis restore <name> \[options\]/,
  );
  usage(() => parseCommandLine("restore", [], OPTIONS, { args: ["<name>"] }), /^missing <name>$/);
  usage(
    () =>
      parseCommandLine("capture", ["snap", "python3", "server.py"], OPTIONS, {
        args: ["<name>"],
        passthrough: "<command...>",
      }),
    /unexpected argument "python3"/,
    /put the <command\.\.\.> after `--`/,
  );
  usage(() => parseCommandLine("ls", ["--", "x"], OPTIONS, { args: [] }), /`stasis ls` takes nothing after `--`/);
  assert.deepEqual(parseCommandLine("rm", ["a", "b", "c"], OPTIONS, { args: ["<name...>"] }).positionals, [
    "a",
    "b",
    "c",
  ]);
});

test("regression: --json and stasis's options after `--` belong to the wrapped command", () => {
  const p = parseCommandLine(
    "capture",
    ["snap", "--force", "--", "server", "--json", "--verify", "x", "--help"],
    OPTIONS,
    { args: ["<name>"], passthrough: "<command...>" },
  );
  assert.deepEqual(p.values, { force: true });
  assert.deepEqual(p.passthrough, ["server", "--json", "--verify", "x", "--help"]);
});

test("usage and help are generated from the definitions: every visible option, its value and its help", () => {
  assert.equal(
    usageLine("capture", { args: ["<name>"], passthrough: "<command...>" }),
    "stasis capture <name> [options] -- <command...>",
  );
  const help = optionsHelp(OPTIONS);
  assert.match(help, /^ {2}--verify MODE {2,}how to verify\n {4,}second line$/m);
  assert.match(help, /^ {2}-f, --follow {2,}follow$/m);
  assert.match(help, /^ {2}--json {2,}print one JSON document/m);
  assert.doesNotMatch(help, /--old/, "hidden options are not listed");
});

test("stasis's own CLI: a typo of a command or option gets a suggestion; --json may come before the command", async () => {
  const { stasis } = await import("../testing/cli.js");
  const command = await stasis(["restre", "x"]);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /unknown command "restre"\n {2}hint: did you mean `stasis restore`\?/);
  const option = await stasis(["restore", "x", "--verfy", "full"]);
  assert.equal(option.code, 2);
  assert.match(
    option.stderr,
    /^stasis: error E_USAGE: unknown option --verfy for `stasis restore`\n {2}hint: did you mean --verify\?/,
  );
  assert.doesNotMatch(option.stderr, /ERR_PARSE_ARGS|Unknown option '--verfy'/, "not Node's parse error");
  const before = await stasis(["--json", "ps"]);
  assert.equal(before.json.schema, "stasis.ps/v1");
  const help = await stasis(["inspect", "--help"]);
  assert.match(help.stdout, /^usage: stasis inspect <name> \[options\]\n/);
  assert.match(help.stdout, /\n {2}--verify +read every file and check it against the manifest's digests\n/);
});
