/**
 * Test support: the benchmark results kept under bench/results/ against what cites them and against their index
 * (bench/results/README.md), and the decision records (docs/decisions/) against what links them. A result is a
 * run's folder (`2026-11-27-h100/pipeline-3b-41-judged`; the runs of `weights-lanes/` each count alone) or a loose
 * file named without its extension (`2026-11-27-h100/alloc`, whose `.md` and `.json` go together).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** Folders whose sub-folders are runs of their own. */
const GROUPS = new Set(["weights-lanes"]);
const SKIP = new Set(["node_modules", "dist", ".git", ".venv", ".gpu-bundle", "__pycache__"]);
const TEXT = /\.(md|ts|mjs|js|py|sh|c|txt)$/;

/** The paths under bench/results/ that `text` cites, relative to that folder (`""` for the folder itself). */
export function citedResults(text: string): string[] {
  return [...text.matchAll(/bench\/results\/([A-Za-z0-9_.*\-/]*)/g)].map((m) => (m[1] ?? "").replace(/[.,]+$/, ""));
}

/** A results path as the result it belongs to: its run's folder, or a loose file without its extension. */
export function resultOf(path: string, isDir: (rel: string) => boolean): string {
  const parts = path.split("/").filter((p) => p !== "");
  const depth = parts.length > 1 && GROUPS.has(parts[1] ?? "") ? 3 : 2;
  const unit = parts.slice(0, Math.min(parts.length, depth)).join("/");
  return isDir(unit) ? unit : unit.replace(/\.[A-Za-z0-9]+$/, "");
}

/** Every result under `dir` (date folders' README.md files are indexes, not results). */
export function resultsIn(dir: string): string[] {
  const out = new Set<string>();
  const isDir = (rel: string) => existsSync(join(dir, rel)) && statSync(join(dir, rel)).isDirectory();
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path);
      else if (!/(^|^[^/]+\/)README\.md$/.test(path)) out.add(resultOf(path, isDir));
    }
  };
  walk("");
  return [...out].sort();
}

/** The results an index names: the first cell of each table row, `folder/` or `file.ext` or `file.{a,b}`. */
export function indexedResults(index: string): string[] {
  return [...index.matchAll(/^\| `([^`]+)` \|/gm)].map((m) =>
    (m[1] ?? "").replace(/\/$/, "").replace(/\.(\{[^}]*\}|[A-Za-z0-9]+)$/, ""),
  );
}

/** Whether a cited path exists under `dir`; a `*` in its last part matches any run of characters. */
export function citedExists(dir: string, cited: string): boolean {
  if (!cited.includes("*")) return existsSync(join(dir, cited));
  const at = cited.lastIndexOf("/");
  const parent = join(dir, cited.slice(0, at + 1));
  const escaped = cited
    .slice(at + 1)
    .split("*")
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`^${escaped.join(".*")}$`);
  return existsSync(parent) && readdirSync(parent).some((f) => pattern.test(f));
}

/** The decision records `text` names by path (`docs/decisions/0002-stage-hold.md`, or `decisions/0002-...` in docs). */
export function citedDecisions(text: string): string[] {
  return [...text.matchAll(/decisions\/(\d{4}-[a-z0-9-]+\.md)/g)].map((m) => m[1] ?? "");
}

/** Every citation of bench/results/ in the repository's text files outside it: file -> cited paths. */
export function citationsIn(repo: string, cite: (text: string) => string[] = citedResults): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (abs: string): void => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const path = join(abs, e.name);
      const rel = relative(repo, path);
      if (SKIP.has(e.name) || rel === join("bench", "results")) continue;
      if (e.isDirectory()) walk(path);
      else if (TEXT.test(e.name)) {
        const cited = cite(readFileSync(path, "utf8")).filter((c) => c !== "");
        if (cited.length > 0) out.set(rel, cited);
      }
    }
  };
  walk(repo);
  return out;
}
