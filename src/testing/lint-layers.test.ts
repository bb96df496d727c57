/** The lint rules that hold src/ to its layers and refuse import cycles (scripts/lint/layers.mjs), on real files. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Linter } from "eslint";
import tseslint from "typescript-eslint";
import { REPO } from "./cli.js";

async function lint(files: Record<string, string>): Promise<string[]> {
  const { plugin } = (await import(pathToFileURL(join(REPO, "scripts/lint/layers.mjs")).href)) as {
    plugin: NonNullable<Linter.Config["plugins"]>[string];
  };
  const root = mkdtempSync(join(tmpdir(), "stasis-layers-"));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    const config: Linter.Config[] = [
      {
        files: ["**/*.ts"],
        languageOptions: { parser: tseslint.parser as Linter.Parser },
        plugins: { stasis: plugin },
        rules: { "stasis/layers": "error", "stasis/no-cycle": "error" },
      },
    ];
    const linter = new Linter({ configType: "flat", cwd: root });
    return Object.entries(files).flatMap(([path, text]) =>
      linter.verify(text, config, { filename: join(root, path) }).map((m) => `${path}: ${m.message}`),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test("an import up the layers is refused, naming both layers; down and sideways are allowed", async () => {
  const found = await lint({
    "src/bench/ok.ts":
      'import { x } from "../commands/y.js";\nimport { e } from "../errors.js";\nexport const a = x + e;\n',
    "src/commands/y.ts": "export const x = 1;\n",
    "src/errors.ts": "export const e = 1;\n",
    "src/store/up.ts": 'import { x } from "../commands/y.js";\nexport const b = x;\n',
  });
  assert.deepEqual(found, [
    "src/store/up.ts: base (src/store) imports api (src/commands), a layer above it: move what both need down, or pass it in",
  ]);
});

test("test support is for tests only, and a folder in no layer is named", async () => {
  const found = await lint({
    "src/store/a.ts": 'import { f } from "../testing/fixtures.js";\nexport const a = f;\n',
    "src/store/a.test.ts": 'import { f } from "../testing/fixtures.js";\nexport const t = f;\n',
    "src/testing/fixtures.ts": 'import { x } from "../cli/main.js";\nexport const f = x;\n',
    "src/cli/main.ts": "export const x = 1;\n",
    "src/newthing/n.ts": 'import { e } from "../errors.js";\nexport const n = e;\n',
    "src/errors.ts": "export const e = 1;\n",
  });
  assert.deepEqual(found, [
    "src/store/a.ts: product code imports test support (../testing/fixtures.js)",
    "src/newthing/n.ts: src/newthing is in no layer: add it to LAYERS in scripts/lint/layers.mjs",
  ]);
});

test("an import cycle is refused in each file on it, with the cycle; type-only imports make none", async () => {
  const found = await lint({
    "src/store/a.ts": 'import { b } from "./b.js";\nexport const a = () => b;\n',
    "src/store/b.ts": 'import { c } from "./c.js";\nexport const b = () => c;\n',
    "src/store/c.ts": 'import { a } from "./a.js";\nexport const c = () => a;\n',
    "src/proc/d.ts": 'import type { E } from "./e.js";\nexport type D = E;\nexport const d = 1;\n',
    "src/proc/e.ts": 'import { d } from "./d.js";\nexport type E = number;\nexport const e = d;\n',
  });
  assert.deepEqual(found, [
    "src/store/a.ts: import cycle: store/a.ts -> store/b.ts -> store/c.ts -> store/a.ts",
    "src/store/b.ts: import cycle: store/b.ts -> store/c.ts -> store/a.ts -> store/b.ts",
    "src/store/c.ts: import cycle: store/c.ts -> store/a.ts -> store/b.ts -> store/c.ts",
  ]);
});
