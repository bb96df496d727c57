import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { restrictTree } from "./private.js";

test("restrictTree makes a folder root's alone, leaves private files untouched and symlinks unfollowed", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "stasis-private-"));
  const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
  t.after(() => [root, host].forEach((d) => rmSync(d, { recursive: true, force: true })));
  mkdirSync(join(root, "weights"), { mode: 0o755 });
  writeFileSync(join(root, "weights", "w.safetensors"), "w", { mode: 0o644 });
  writeFileSync(join(root, "already"), "a", { mode: 0o600 });
  writeFileSync(join(host, "theirs"), "h", { mode: 0o644 });
  symlinkSync(join(host, "theirs"), join(root, "link"));
  chmodSync(root, 0o755);
  const ctime = statSync(join(root, "already")).ctimeMs;
  const changed = await restrictTree(root);
  assert.deepEqual(changed.sort(), [root, join(root, "weights"), join(root, "weights", "w.safetensors")].sort());
  assert.equal(statSync(root).mode & 0o777, 0o700);
  assert.equal(statSync(join(root, "weights")).mode & 0o777, 0o700);
  assert.equal(statSync(join(root, "weights", "w.safetensors")).mode & 0o777, 0o600);
  assert.equal(
    statSync(join(root, "already")).ctimeMs,
    ctime,
    "a private file is not touched (its verified stamp holds)",
  );
  assert.equal(statSync(join(host, "theirs")).mode & 0o777, 0o644, "a symlink's target is not changed");
});
