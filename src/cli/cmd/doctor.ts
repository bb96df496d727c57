import type { CliCommand } from "../registry.js";
import type { SettingReport } from "../../commands/doctor.js";
import { KNOBS } from "../../config/knobs.js";

const MARK = { pass: "ok  ", warn: "WARN", fail: "FAIL" } as const;

export const command: CliCommand = {
  args: [],
  help: [
    "Checks this machine for what stasis needs; exits 1 if a check fails. Then shows every setting",
    "(STASIS_* variables, docs/configuration.md) with its effective value and where it came from:",
    "default or env (a restore through `stasis serve` takes the restore knobs set here from its request).",
  ].join("\n"),
  options: {},
  async run({ settings }) {
    const { doctor } = await import("../../commands/doctor.js");
    const r = await doctor(settings);
    const checks = r.checks.map(
      (c) =>
        `[${MARK[c.status]}] ${c.name.padEnd(13)} ${c.detail}${c.fix && c.status !== "pass" ? `\n       ${" ".repeat(13)} fix: ${c.fix}` : ""}`,
    );
    const text = [...checks, "", "settings (docs/configuration.md):", ...r.settings.map(settingLine)].join("\n");
    return { data: r, text, exitCode: r.ok ? 0 : 1 };
  },
};

function settingLine(s: SettingReport): string {
  const knob = Object.values(KNOBS).find((k) => k.env === s.knob);
  const value =
    s.value === null
      ? `(${knob?.defaultText ?? "none"})`
      : typeof s.value === "boolean"
        ? s.value
          ? "1"
          : "0"
        : String(s.value);
  return `  ${s.knob.padEnd(28)} ${value.padEnd(32)} ${s.source}`;
}
