import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
type Gen = { staleFiles(root: string, dist?: string): Promise<string[]>; table(knobs: unknown): string };
const gen = async (): Promise<Gen> =>
  (await import(pathToFileURL(join(root, "scripts", "gen-config-docs.mjs")).href)) as Gen;

test("docs/configuration.md and every config:table in the docs are what the schema makes (gen-config-docs.mjs)", async () => {
  const stale = await (await gen()).staleFiles(root);
  assert.deepEqual(stale, [], "run `npm run build && node scripts/gen-config-docs.mjs` and commit what it writes");
});

test("a stale table between the markers is found, and only there", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-config-docs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "docs"));
  const { staleFiles, table } = await gen();
  const { KNOBS } = await import("./knobs.js");
  const { configurationDoc } = (await import(pathToFileURL(join(root, "scripts", "gen-config-docs.mjs")).href)) as {
    configurationDoc(k: unknown, i: unknown, r: unknown): string;
  };
  const { INTERNAL, REMOVED } = await import("./internal.js");
  writeFileSync(join(dir, "docs", "configuration.md"), configurationDoc(KNOBS, INTERNAL, REMOVED));
  writeFileSync(join(dir, "README.md"), `# x\n<!-- config:table -->\n${table(KNOBS)}\n<!-- config:end -->\nafter\n`);
  writeFileSync(join(dir, "docs", "other.md"), "no markers here\n");
  assert.deepEqual(await staleFiles(dir, root), []);
  writeFileSync(join(dir, "README.md"), "# x\n<!-- config:table -->\n| old | table |\n<!-- config:end -->\nafter\n");
  assert.deepEqual(await staleFiles(dir, root), [join(dir, "README.md")]);
});
