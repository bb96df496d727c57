// The layers of src/ and the two ESLint rules that hold the code to them (eslint.config.js):
//   stasis/layers    an import goes to the same layer or one below, never up; test support only from tests
//   stasis/no-cycle  no file reaches itself through its imports
// docs/ARCHITECTURE.md ("Layers") is the reader's side of LAYERS; keep the two alike.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** Highest first: a file may import its own layer and those after it. Keys: a folder of src/ or a file of src/. */
export const LAYERS = [
  ["cli", ["cli"]],
  // The benchmark harness drives the commands and the daemon as a user would (`stasis bench --via api`).
  ["api", ["commands", "serve", "bench"]],
  ["pipelines", ["capture", "restore"]],
  [
    "adapters",
    ["engines", "criu", "cuda", "pagecache", "remote", "launch", "instances", "doctor", "fingerprint", "netns"],
  ],
  [
    "base",
    [
      "store",
      "native",
      "proc",
      "pipeline",
      "config",
      "contracts",
      "env.ts",
      "files.ts",
      "home.ts",
      "version.ts",
      "text.ts",
    ],
  ],
  ["core", ["errors.ts", "events.ts"]],
];
/** Test support: any test may import it, product code never; it may import anything. */
export const TESTING = "testing";

const RANK = new Map(LAYERS.flatMap(([, keys], i) => keys.map((k) => [k, LAYERS.length - i])));
const LAYER_NAME = new Map(LAYERS.flatMap(([name, keys]) => keys.map((k) => [k, name])));

export const isTest = (file) => /\.(test|itest|gtest)\.ts$/.test(file);

/** The key of a src/ path (its top folder, or its own name with `.ts` for a file directly in src/). */
function keyOf(srcRoot, file) {
  const parts = relative(srcRoot, file).split(sep);
  if (parts.length > 1) return parts[0];
  const name = parts[0].replace(/\.js$/, ".ts");
  return isTest(name) ? name.replace(/\.(test|itest|gtest)\.ts$/, ".ts") : name;
}

function srcRootOf(file) {
  const i = file.lastIndexOf(`${sep}src${sep}`);
  return i < 0 ? undefined : file.slice(0, i + 4);
}

/** Every relative module specifier of a node that imports or re-exports. */
function specifierOf(node) {
  const s = node.source;
  return s && s.type === "Literal" && typeof s.value === "string" && s.value.startsWith(".") ? s.value : undefined;
}

const layersRule = {
  meta: {
    type: "problem",
    docs: { description: "imports go down the layers of src/ (docs/ARCHITECTURE.md), never up" },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const srcRoot = srcRootOf(file);
    if (!srcRoot) return {};
    const from = keyOf(srcRoot, file);
    if (from === TESTING) return {};
    const fromRank = RANK.get(from);
    const check = (node) => {
      const spec = specifierOf(node);
      if (!spec) return;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(srcRoot + sep)) return;
      const to = keyOf(srcRoot, target);
      if (to === TESTING || isTest(target.replace(/\.js$/, ".ts"))) {
        if (!isTest(file)) context.report({ node, message: `product code imports test support (${spec})` });
        return;
      }
      if (fromRank === undefined || !RANK.has(to)) {
        const missing = fromRank === undefined ? from : to;
        context.report({ node, message: `src/${missing} is in no layer: add it to LAYERS in scripts/lint/layers.mjs` });
        return;
      }
      if (RANK.get(to) > fromRank) {
        context.report({
          node,
          message:
            `${LAYER_NAME.get(from)} (src/${from}) imports ${LAYER_NAME.get(to)} (src/${to}), a layer above it: ` +
            "move what both need down, or pass it in",
        });
      }
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

// The import graph of src/, read once per lint run from the files themselves (static imports and re-exports of
// values; `import type` is erased at compile time and dynamic `import()` loads lazily, so neither can make a
// module see another half-initialised).
let graphCache;
const IMPORT_RE = /^\s*(?:import|export)\s+(?!type\b)(?:[^"';]*?\sfrom\s+)?["'](\.[^"']+)["']/gm;

function sourceFiles(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

function importGraph(srcRoot) {
  if (graphCache?.srcRoot === srcRoot) return graphCache;
  const edges = new Map();
  for (const f of sourceFiles(srcRoot)) {
    const targets = [];
    for (const m of readFileSync(f, "utf8").matchAll(IMPORT_RE)) {
      targets.push(resolve(dirname(f), m[1]).replace(/\.js$/, ".ts"));
    }
    edges.set(f, targets);
  }
  // Tarjan's strongly connected components: a component of more than one file is a cycle.
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const component = new Map();
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const members = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        members.push(w);
      } while (w !== v);
      if (members.length > 1 || (edges.get(v) ?? []).includes(v)) for (const m of members) component.set(m, members);
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  graphCache = { srcRoot, edges, component };
  return graphCache;
}

/** One cycle through `from` and `to` (same component), as paths relative to src/. */
function cyclePath(graph, from, to) {
  const members = new Set(graph.component.get(from));
  const prev = new Map([[to, undefined]]);
  const queue = [to];
  while (queue.length) {
    const v = queue.shift();
    if (v === from) break;
    for (const w of graph.edges.get(v) ?? []) {
      if (members.has(w) && !prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  const path = [];
  for (let v = from; v !== undefined; v = prev.get(v)) path.unshift(relative(graph.srcRoot, v));
  return [relative(graph.srcRoot, from), ...path].join(" -> ");
}

const noCycleRule = {
  meta: { type: "problem", docs: { description: "no import cycles in src/" }, schema: [] },
  create(context) {
    const file = context.filename;
    const srcRoot = srcRootOf(file);
    if (!srcRoot) return {};
    const graph = importGraph(srcRoot);
    const members = graph.component.get(file);
    if (!members) return {};
    const check = (node) => {
      if (node.importKind === "type" || node.exportKind === "type") return;
      const spec = specifierOf(node);
      if (!spec) return;
      const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
      if (members.includes(target)) {
        context.report({ node, message: `import cycle: ${cyclePath(graph, file, target)}` });
      }
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
  },
};

export const plugin = { meta: { name: "stasis" }, rules: { layers: layersRule, "no-cycle": noCycleRule } };
