/**
 * `stasis bench` end to end, as root with real CRIU, on the slow-starting example server: every strategy but
 * warm (the example has no compile caches), one run each; the report, its files and the disk yardstick.
 * Drops the page cache (a one-off action, as the benchmark says).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertValidDocument } from "../testing/schemas.js";
import { stasis, tempHome, EXAMPLES } from "../testing/cli.js";
import { freePort } from "../proc/net.js";

const { env, teardown } = tempHome();
const out = mkdtempSync(join(tmpdir(), "stasis-bench-out-"));
after(() => teardown(1, out));

test("bench: cold, restore-hot and restore-cold side by side, with the disk's rate, a table, JSON and pictures", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cap = await stasis(
    [
      "capture",
      "b",
      "--json",
      "--ready-url",
      `${base}/health`,
      "--canary-url",
      `${base}/answer?q=bench`,
      "--",
      "python3",
      join(EXAMPLES, "slow_server.py"),
      "--port",
      String(port),
      "--startup-seconds",
      "2",
    ],
    env,
  );
  assert.equal(cap.code, 0, cap.output);
  const r = await stasis(
    ["bench", "b", "--strategies", "cold,restore-hot,restore-cold", "--repeat", "1", "--out", out, "--json"],
    env,
    600_000,
  );
  assert.equal(r.code, 0, r.output);
  assertValidDocument(r.json, "stasis.bench/v1");
  const report = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
  assert.deepEqual(
    report.strategies.map((s: { strategy: string }) => s.strategy),
    ["cold", "restore-hot", "restore-cold"],
  );
  const byName = Object.fromEntries(
    report.strategies.map((s: { strategy: string; medianFirstTokenMs: number }) => [s.strategy, s]),
  );
  assert.ok(byName.cold.medianFirstTokenMs >= 2000, "the cold start includes the server's 2 s start-up");
  assert.ok(byName["restore-hot"].medianFirstTokenMs < byName.cold.medianFirstTokenMs);
  assert.ok(report.speedup > 1);
  const hotPhases = byName["restore-hot"].phases.map((p: { name: string }) => p.name);
  for (const p of ["cli-overhead", "criu-restore", "canary", "first-token"])
    assert.ok(hotPhases.includes(p), `restore-hot has a ${p} phase`);
  assert.equal(
    report.disk.bytes,
    cap.json.manifest.files
      .filter((f: { role: string }) => f.role === "image")
      .reduce((a: number, f: { size: number }) => a + f.size, 0),
  );
  assert.ok(report.disk.gbps > 0 && report.coldRatio > 0);
  for (const f of ["results.md", "waterfall.svg", "waterfall.png"]) assert.ok(existsSync(join(out, f)), f);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /restore-cold's first token took/);
  assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, [], "the benchmark leaves nothing running");
});
