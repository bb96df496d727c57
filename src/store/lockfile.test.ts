import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockFile } from "./lockfile.js";

test("a lock being taken is never judged stale: eight processes taking it 25 times hold it one at a time", async (t) => {
  // Regression: the lock was created empty and its pid written after; a taker reading it empty judged it stale and
  // took it too (two restores claimed one address at once; here, up to 3 holders at once).
  const dir = mkdtempSync(join(tmpdir(), "stasis-lock-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "claims.lock");
  const log = join(dir, "log");
  const module = fileURLToPath(new URL("./lockfile.js", import.meta.url));
  const taker = `
    const { appendFileSync } = await import("node:fs");
    const { lockFile } = await import(${JSON.stringify(module)});
    for (let i = 0; i < 25; i++) {
      const release = await lockFile(${JSON.stringify(path)}, { wait: true });
      appendFileSync(${JSON.stringify(log)}, "+\\n");
      await new Promise((r) => setTimeout(r, 1));
      appendFileSync(${JSON.stringify(log)}, "-\\n");
      await release();
    }`;
  const run = () =>
    new Promise<number | null>((resolve) =>
      spawn(process.execPath, ["--input-type=module", "-e", taker], { stdio: "inherit" }).on("exit", resolve),
    );
  assert.deepEqual(await Promise.all(Array.from({ length: 8 }, run)), [0, 0, 0, 0, 0, 0, 0, 0]);
  let holding = 0;
  let most = 0;
  const lines = readFileSync(log, "utf8").trim().split("\n");
  for (const l of lines) most = Math.max(most, (holding += l === "+" ? 1 : -1));
  assert.deepEqual([lines.length, most], [400, 1]);
  assert.deepEqual(readdirSync(dir).sort(), ["log"], "no lock and no file of a taker left");
});

test("a dead owner's lock is taken over, and what a killed taker left beside it is removed", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lock-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "x.lock");
  const dead = 2 ** 22 + 11; // above pid_max's default: no such process
  writeFileSync(path, String(dead));
  writeFileSync(`${path}.${dead}.0123abcd`, String(dead));
  const release = await lockFile(path, { wait: false });
  assert.deepEqual(readdirSync(dir), ["x.lock"]);
  await release();
  assert.deepEqual(readdirSync(dir), []);
});

test("a live owner's lock is busy without wait, and release never removes another's lock", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lock-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "y.lock");
  const release = await lockFile(path, { wait: false });
  await assert.rejects(lockFile(path, { wait: false }), /is held by process/);
  writeFileSync(join(dir, "other"), "1"); // another's lock (pid 1 is alive) put in its place
  renameSync(join(dir, "other"), path);
  await release();
  assert.deepEqual(readdirSync(dir), ["y.lock"]);
});
