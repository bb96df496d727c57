import type { CliCommand } from "../registry.js";
import { StasisError } from "../../errors.js";
import { interruptSignal } from "../interrupt.js";
import type { LogStream } from "../../commands/logs.js";

export const command: CliCommand = {
  args: ["<id>"],
  help: [
    "Prints an instance's logs (`stasis ps` lists instances; a unique prefix of an id will do): the server's",
    "standard error by default. With several logs, each starts with a `==> path <==` line.",
  ].join("\n"),
  options: {
    follow: { type: "boolean", short: "f", help: "keep printing what is appended until the instance ends (or Ctrl-C)" },
    stderr: { type: "boolean", help: "the server's standard error (the default)" },
    stdout: { type: "boolean", help: "the server's standard output" },
    criu: { type: "boolean", help: "CRIU's logs of the capture or restore that made the instance" },
  },
  async run({ values, positionals, json }) {
    const follow = Boolean(values.follow);
    if (follow && json)
      throw new StasisError("E_USAGE", "--follow prints as the logs grow; --json prints one document", {
        hint: "use one of them",
      });
    const picked = (["stderr", "stdout", "criu"] as const).filter((s) => values[s]);
    const streams: LogStream[] = picked.length > 0 ? [...picked] : ["stderr"];
    const { logs } = await import("../../commands/logs.js");
    const { signal, dispose } = interruptSignal();
    let shown = "";
    const heading = (path: string) => {
      if (streams.length === 1 && streams[0] !== "criu") return;
      if (shown !== path) process.stdout.write(`${shown === "" ? "" : "\n"}==> ${path} <==\n`);
      shown = path;
    };
    try {
      const r = await logs({
        id: positionals[0]!,
        streams,
        follow,
        signal,
        // Followed output is printed as it comes; the whole logs otherwise come back as the result's text.
        onData: json ? undefined : (path, text) => (heading(path), process.stdout.write(text)),
      });
      return { data: r };
    } finally {
      dispose();
    }
  },
};
