import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, linkSync, chmodSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recordVerified, stampFiles, stillVerified, STAMPS_FILE } from "./verified.js";

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "stasis-verified-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (path: string, size: number) => ({ path, size });

test("a file stamped as verified stays verified until it changes in any way", async () => {
  for (const n of ["a", "b", "c", "d"]) writeFileSync(join(dir, n), "0123456789");
  const files = ["a", "b", "c", "d"].map((n) => entry(n, 10));
  const still = async (fs: { path: string; size: number }[]) => stillVerified(dir, await stampFiles(dir, fs));
  assert.equal((await still(files)).size, 0, "nothing is verified before a stamp is recorded");
  await recordVerified(dir, await stampFiles(dir, files));
  assert.deepEqual([...(await still(files))].sort(), ["a", "b", "c", "d"]);

  writeFileSync(join(dir, "a"), "0123456789"); // same bytes, same size, rewritten
  chmodSync(join(dir, "b"), 0o600); // metadata only: ctime moves
  linkSync(join(dir, "c"), join(dir, "c2")); // a new hard link: ctime moves
  assert.deepEqual([...(await still(files))], ["d"]);
  assert.deepEqual([...(await still([entry("d", 11)]))], [], "a size the manifest does not expect never counts");
});

test("a file that changes between the stamp and the record is not recorded", async () => {
  writeFileSync(join(dir, "a"), "x");
  const files = [entry("a", 1)];
  const before = await stampFiles(dir, files);
  writeFileSync(join(dir, "a"), "y"); // changed while it was being checked
  await recordVerified(dir, before);
  assert.equal((await stillVerified(dir, await stampFiles(dir, files))).size, 0);
});

test("stamps of another boot or a damaged stamp file count for nothing", async () => {
  writeFileSync(join(dir, "a"), "x");
  const files = [entry("a", 1)];
  await recordVerified(dir, await stampFiles(dir, files));
  const stamps = JSON.parse(readFileSync(join(dir, STAMPS_FILE), "utf8"));
  writeFileSync(join(dir, STAMPS_FILE), JSON.stringify({ ...stamps, bootId: "another-boot" }));
  assert.equal((await stillVerified(dir, await stampFiles(dir, files))).size, 0);
  writeFileSync(join(dir, STAMPS_FILE), "{not json");
  assert.equal((await stillVerified(dir, await stampFiles(dir, files))).size, 0);
  await recordVerified(dir, await stampFiles(dir, files)); // and a fresh record replaces it
  assert.equal((await stillVerified(dir, await stampFiles(dir, files))).size, 1);
});
