import type { CliCommand } from "../registry.js";

const MARK = { pass: "ok  ", warn: "WARN", fail: "FAIL" } as const;

export const command: CliCommand = {
  args: [],
  help: "Checks this machine for what stasis needs; exits 1 if a check fails.",
  options: {},
  async run() {
    const { doctor } = await import("../../commands/doctor.js");
    const r = await doctor();
    const text = r.checks
      .map(
        (c) =>
          `[${MARK[c.status]}] ${c.name.padEnd(13)} ${c.detail}${c.fix && c.status !== "pass" ? `\n       ${" ".repeat(13)} fix: ${c.fix}` : ""}`,
      )
      .join("\n");
    return { data: r, text, exitCode: r.ok ? 0 : 1 };
  },
};
