import type { CliCommand } from "../registry.js";
import { formatBytes, formatMs, table } from "../../text.js";

export const command: CliCommand = {
  args: ["<name>"],
  options: { verify: { type: "boolean", help: "read every file and check it against the manifest's digests" } },
  async run({ values, positionals, events }) {
    const name = positionals[0]!;
    const { inspect } = await import("../../commands/inspect.js");
    const r = await inspect({ name, verify: Boolean(values.verify) }, events);
    const m = r.manifest;
    const fp = m.fingerprint;
    const lines = [
      `snapshot   ${m.name}  (${r.snapshotDir})`,
      `created    ${m.createdAt} by stasis ${m.stasisVersion}`,
      `command    ${m.command.argv.join(" ")}  (cwd ${m.command.cwd})`,
      `server     ${m.server.url}${m.server.readyPath}  engine ${m.engine.kind}`,
      `canary     ${m.engine.canary.method} ${m.engine.canary.path} -> ${m.engine.canary.status}, sha256 ${m.engine.canary.sha256.slice(0, 16)}…`,
      `tree       ${m.tree.processes} processes, ${m.tree.cudaProcesses} with CUDA${m.gpu ? `, ${formatBytes(m.gpu.totalBytes)} of GPU memory` : ""}`,
      `machine    ${fp.arch}, kernel ${fp.kernel}, ${fp.cpuModel}, criu ${fp.criuVersion}${fp.gpu ? `, GPU ${fp.gpu.models.join("/")} driver ${fp.gpu.driver} CUDA ${fp.gpu.cuda}` : ""}${fp.engine ? `, ${fp.engine.name} ${fp.engine.version}` : ""}`,
      `timings    ${Object.entries(m.timings)
        .map(([k, v]) => `${k} ${formatMs(v)}`)
        .join(", ")}`,
      "",
      table([
        ["file", "role", "size", "sha256"],
        ...m.files.map((f) => [f.path, f.role, formatBytes(f.size), f.sha256.slice(0, 16) + "…"]),
      ]),
    ];
    if (r.verified)
      lines.push("", `verified: all ${m.files.length} files match their digests (${formatBytes(r.verified.bytes)})`);
    return { data: r, text: lines.join("\n") };
  },
};
