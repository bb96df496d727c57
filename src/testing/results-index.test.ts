/**
 * The benchmark results kept in the tree are the ones cited, and all of them are indexed: every path under
 * bench/results/ that a document, decision record, script or test names exists, and every result there has a row
 * in bench/results/README.md (and every row names a result that is there).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./cli.js";
import { citationsIn, citedDecisions, citedExists, citedResults, indexedResults, resultsIn } from "./results-index.js";

const RESULTS = join(REPO, "bench", "results");
const R = ["bench", "results"].join("/"); // the fixtures' citations, not this file's own

test("every bench/results/ path cited in the repository exists", () => {
  const citations = citationsIn(REPO);
  assert.ok(citations.has(join("docs", "benchmarks.md")), "docs/benchmarks.md cites results");
  const records = [...citations.keys()].filter((f) => f.startsWith(join("docs", "decisions")));
  assert.ok(records.length > 0, "the decision records cite results");
  const missing = [...citations].flatMap(([file, cited]) =>
    cited.filter((c) => !citedExists(RESULTS, c)).map((c) => `${file}: bench/results/${c}`),
  );
  assert.deepEqual(missing, [], "cite a result that is kept (bench/results/README.md), or keep the result");
});

test("every result under bench/results/ has a row in its index, and every row names a result that is there", () => {
  const kept = resultsIn(RESULTS);
  const indexed = indexedResults(readFileSync(join(RESULTS, "README.md"), "utf8"));
  assert.ok(kept.length > 10, `found ${kept.length} results`);
  assert.deepEqual(
    kept.filter((r) => !indexed.includes(r)),
    [],
    "add these to bench/results/README.md",
  );
  const gone = indexed.filter((r) => !kept.includes(r));
  assert.deepEqual(gone, [], "bench/results/README.md names results that are not there");
});

test("the checks find what they are for: citations, a missing result, an unindexed one, globs", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-results-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "2026-01-01-h100", "run-1"), { recursive: true });
  mkdirSync(join(dir, "2026-01-01-h100", "weights-lanes", "3-c-loop"), { recursive: true });
  writeFileSync(join(dir, "2026-01-01-h100", "run-1", "results.md"), "");
  writeFileSync(join(dir, "2026-01-01-h100", "weights-lanes", "3-c-loop", "results.md"), "");
  writeFileSync(join(dir, "2026-01-01-h100", "README.md"), "");
  writeFileSync(join(dir, "2026-01-01-h100", "alloc.md"), "");
  writeFileSync(join(dir, "pagecache-h100.json"), "");
  writeFileSync(join(dir, "pagecache-h100.md"), "");
  assert.deepEqual(citedResults(`see (${R}/2026-01-01-h100/run-1/results.md). Also ${R}/x-*.md, ${R}/$(date)`), [
    "2026-01-01-h100/run-1/results.md",
    "x-*.md",
    "",
  ]);
  assert.equal(citedExists(dir, "2026-01-01-h100/run-1/results.md"), true);
  assert.equal(citedExists(dir, "2026-01-01-h100/run-2/"), false, "a removed run");
  assert.equal(citedExists(dir, "pagecache-*.md"), true);
  assert.equal(citedExists(dir, "pagecache-*.txt"), false);
  const run = "2026-01-01-h100/run-1";
  const lanes = "2026-01-01-h100/weights-lanes/3-c-loop";
  assert.deepEqual(resultsIn(dir), ["2026-01-01-h100/alloc", run, lanes, "pagecache-h100"]);
  const index = [
    "| folder | what |",
    "| --- | --- |",
    `| \`${run}/\` | x |`,
    "| `pagecache-h100.{json,md}` | y |",
    "| `2026-01-01-h100/alloc.md` | z |",
  ].join("\n");
  assert.deepEqual(indexedResults(index), [run, "pagecache-h100", "2026-01-01-h100/alloc"]);
  assert.deepEqual(
    resultsIn(dir).filter((r) => !indexedResults(index).includes(r)),
    [lanes],
    "unindexed",
  );
});

test("every decision record a comment or document links exists, and the records' README lists each one", () => {
  const decisions = join(REPO, "docs", "decisions");
  const links = citationsIn(REPO, citedDecisions);
  assert.ok(
    [...links.keys()].some((f) => f.startsWith("src")),
    "product code links its decisions",
  );
  const missing = [...links].flatMap(([file, cited]) =>
    cited.filter((c) => !existsSync(join(decisions, c))).map((c) => `${file}: ${c}`),
  );
  assert.deepEqual(missing, [], "link a record that is there");
  const records = readdirSync(decisions).filter((f) => /^\d{4}-.*\.md$/.test(f));
  const readme = readFileSync(join(decisions, "README.md"), "utf8");
  const listed = citedDecisions(readme.replace(/\]\((\d{4})/g, "](decisions/$1"));
  assert.deepEqual(
    records.filter((r) => !listed.includes(r)),
    [],
    "list these in docs/decisions/README.md",
  );
  const d = ["docs", "decisions"].join("/"); // a fixture's link, not this file's own
  assert.deepEqual(citedDecisions(`// Why: ${d}/0002-stage-hold.md. See [0005](${d.slice(5)}/0005-x.md)`), [
    "0002-stage-hold.md",
    "0005-x.md",
  ]);
});
