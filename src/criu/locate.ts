import { access, constants, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { StasisError } from "../errors.js";
import { paths } from "../home.js";
import { run } from "../proc/run.js";

/** CRIU older than this cannot restore on 6.x kernels (`vdso: Unexpected rt vDSO area bounds` with 3.17). */
export const MIN_CRIU = "4.1";

export interface Criu {
  path: string;
  version: string;
  /** Where it was found: the STASIS_CRIU variable, the private build under STASIS_HOME, or the PATH. */
  source: "env" | "stasis-home" | "path";
  /** What stasis's CRIU patches add (scripts/criu-patches), as `criu --version` lists them: "lazy-prefill". */
  features: string[];
}

/**
 * Candidate criu binaries, best first. `chosen` (the STASIS_CRIU setting, `Config.criu`), when set, is the only one:
 * an explicit choice. `env` gives the PATH.
 */
export function criuCandidates(
  chosen: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { path: string; source: Criu["source"] }[] {
  if (chosen) return [{ path: chosen, source: "env" }];
  const out: { path: string; source: Criu["source"] }[] = [];
  out.push({ path: join(paths.tools(), "criu", "bin", "criu"), source: "stasis-home" });
  // Set-up installs into the default home; a store moved elsewhere with STASIS_HOME still finds that build.
  out.push({ path: join(paths.tools("/var/lib/stasis"), "criu", "bin", "criu"), source: "stasis-home" });
  for (const dir of (env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    if (dir) out.push({ path: join(dir, "criu"), source: "path" });
  }
  return out;
}

/**
 * What to read into the page cache for `criu`: a private install (STASIS_CRIU, or the build under STASIS_HOME: a
 * wrapper at <root>/bin/criu, the binary and its own libraries under <root>) whole, else the binary alone.
 */
export function criuInstallPaths(criu: Pick<Criu, "path" | "source">): string[] {
  if (criu.source !== "path" && criu.path.endsWith("/bin/criu")) return [dirname(dirname(criu.path))];
  return [criu.path];
}

/** Parses `criu --version` output ("Version: 4.2.1\nGitID: ..."). */
export function parseCriuVersion(text: string): string | undefined {
  return /Version:\s*([0-9]+(?:\.[0-9]+)*)/.exec(text)?.[1];
}

/** Parses the "Features: a b" line that stasis's patched CRIU adds to `criu --version`. */
export function parseCriuFeatures(text: string): string[] {
  return /^Features:\s*(.*)$/m.exec(text)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
}

/** Compares dotted versions numerically: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * Finds a usable CRIU (>= MIN_CRIU). Throws E_CRIU_MISSING when there is none and E_CRIU_TOO_OLD when the only
 * ones found are older, naming them.
 */
export async function locateCriu(chosen: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Criu> {
  const tooOld: string[] = [];
  for (const c of criuCandidates(chosen, env)) {
    try {
      await access(c.path, constants.X_OK);
    } catch {
      continue;
    }
    const said = await versionOutput(c.path);
    const version = said && parseCriuVersion(said);
    if (!version) continue;
    if (compareVersions(version, MIN_CRIU) < 0) {
      tooOld.push(`${c.path} (${version})`);
      continue;
    }
    return { path: c.path, version, source: c.source, features: parseCriuFeatures(said) };
  }
  const hint =
    "run the set-up script (`./setup.sh`), which builds CRIU 4.2.1 into $STASIS_HOME/tools/criu, or set STASIS_CRIU";
  if (tooOld.length > 0) {
    throw new StasisError("E_CRIU_TOO_OLD", `CRIU >= ${MIN_CRIU} is needed; found only ${tooOld.join(", ")}`, { hint });
  }
  if (chosen) {
    throw new StasisError("E_CRIU_MISSING", `STASIS_CRIU=${chosen} is not an executable CRIU`, {
      hint: "point STASIS_CRIU at a criu binary, or unset it",
    });
  }
  throw new StasisError("E_CRIU_MISSING", "CRIU is not installed (no criu in $STASIS_HOME/tools or on the PATH)", {
    hint,
  });
}

/**
 * What `criu --version` says, asked once per binary while it stays the same file (a long-lived `stasis serve`
 * then spends no process start per restore on it: docs/decisions/0010-serve-daemon.md).
 */
const versions = new Map<string, { key: string; text: string }>();
async function versionOutput(path: string): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  const key = st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : "";
  const known = versions.get(path);
  if (st && known?.key === key) return known.text;
  const out = await run(path, ["--version"], { timeoutMs: 10_000 }).catch(() => undefined);
  if (!out) return undefined;
  const text = out.stdout + out.stderr;
  if (st && parseCriuVersion(text)) versions.set(path, { key, text });
  return text;
}
