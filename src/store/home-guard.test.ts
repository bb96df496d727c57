import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareHome } from "./home-guard.js";
import { StasisError } from "../errors.js";

const unusable = (re: RegExp) => (e: unknown) =>
  e instanceof StasisError && e.code === "E_STORE_UNUSABLE" && re.test(e.message) && /STASIS_HOME/.test(e.hint ?? "");

test("a STASIS_HOME under /proc or /sys is refused at once (it used to spin for ever)", async () => {
  const started = performance.now();
  await assert.rejects(
    prepareHome(undefined, "/proc/stasis-home-test/deeper"),
    unusable(/on proc, a pseudo file system/),
  );
  await assert.rejects(prepareHome(undefined, "/proc"), unusable(/proc/));
  await assert.rejects(prepareHome(undefined, "/sys/kernel/stasis"), unusable(/sysfs/));
  assert.ok(performance.now() - started < 2000, "refused fast");
});

test("a STASIS_HOME that is a file, or under one, is refused", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-home-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "file"), "");
  await assert.rejects(prepareHome(undefined, join(dir, "file")), unusable(/not a folder/));
  await assert.rejects(prepareHome(undefined, join(dir, "file", "home")), unusable(/is a file, not a folder/));
});

test("a new STASIS_HOME is created root's alone; an existing open one is tightened, with one warning", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-home-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const home = join(dir, "a", "home");
  await prepareHome(undefined, home);
  assert.equal(statSync(home).mode & 0o777, 0o700);

  const open = join(dir, "open");
  mkdirSync(join(open, "snapshots"), { recursive: true });
  mkdirSync(join(open, "instances"));
  for (const d of [open, join(open, "snapshots"), join(open, "instances")]) chmodSync(d, 0o755);
  const warnings: string[] = [];
  await prepareHome((m) => warnings.push(m), open);
  await prepareHome((m) => warnings.push(m), open);
  for (const d of [open, join(open, "snapshots"), join(open, "instances")])
    assert.equal(statSync(d).mode & 0o777, 0o700, d);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /root's alone.*was 755/);
});
