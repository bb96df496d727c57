import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, openSync, closeSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome } from "../../testing/cli.js";
import { sampleManifest } from "../../testing/fixtures.js";
import { digestFiles } from "../../store/digest.js";
import { scratch, settled, writeFile } from "../../testing/testfs.js";

const MiB = 1 << 20;

test("stasis evict, residency and prefetch on a directory, with --json and as text", async (t) => {
  const s = scratch("cli");
  t.after(s.cleanup);
  const d = join(s.dir, "d");
  mkdirSync(join(d, "sub"), { recursive: true });
  writeFile(join(d, "a"), 3 * MiB);
  writeFile(join(d, "sub", "b"), MiB + 5);
  const evicted = await stasis(["evict", d, "--json"]);
  assert.equal(evicted.code, 0, evicted.stderr);
  assert.equal(evicted.json.total.files, 2);
  const pre = await stasis(["prefetch", d, "--json", "--concurrency", "2", "--strategy", "read"]);
  assert.equal(pre.code, 0, pre.stderr);
  assert.deepEqual(
    [pre.json.files, pre.json.bytesTotal, pre.json.strategy, pre.json.concurrency],
    [2, 4 * MiB + 5, "read", 1],
  );
  assert.deepEqual(pre.json.paths, [join(d, "a"), join(d, "sub", "b")]);
  const large = await stasis(["evict", d, "--json"]).then(() => stasis(["prefetch", d, "--json", "--large-folios"]));
  assert.equal(large.code, 0, large.stderr);
  assert.deepEqual(
    [large.json.bytesTotal, large.json.strategy],
    [4 * MiB + 5, "populate"],
    "--large-folios: populate, in 2 MiB folios where there are any",
  );
  // Each check below needs the pages to stay resident from one call to the next; the kernel may reclaim a few
  // when memory is short, so a check's calls are repeated (after a top-up) until they see a settled page cache.
  const topUp = async (i: number) => i > 0 && (await stasis(["prefetch", d, "--json"]));
  const res = await settled(
    async (i) => (await topUp(i), stasis(["residency", d, "--json"])),
    (r) => r.json?.total.residentBytes === 4 * MiB + 5,
  );
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.json.total.residentBytes, 4 * MiB + 5);
  const text = await settled(
    async (i) => (await topUp(i), stasis(["prefetch", d, "--skip-resident"])),
    (r) => / read 0 B /.test(r.stdout),
  );
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^prefetched 2 files \(4\.0 MiB\) in .*: read 0 B at 0\.00 GB\/s, 4\.0 MiB was already in memory \(populate, 0 threads\)\n$/,
  );
  const shown = await settled(
    async (i) => (await topUp(i), stasis(["residency", d])),
    (r) => /\(100\.0%\)/.test(r.stdout),
  );
  assert.match(shown.stdout, /\n4\.0 MiB of 4\.0 MiB in 2 files is in the page cache \(100\.0%\)/);
});

test("stasis prefetch: usage errors and a missing snapshot exit with their codes", async (t) => {
  const home = tempHome();
  t.after(home.cleanup);
  const none = await stasis(["prefetch", "--json"]);
  assert.deepEqual([none.code, none.json.error.code], [2, "E_USAGE"]);
  const conc = await stasis(["prefetch", "/etc/hostname", "--concurrency", "0", "--json"]);
  assert.deepEqual([conc.code, conc.json.error.code], [2, "E_USAGE"]);
  assert.match(conc.json.error.message, /--concurrency: expected a number >= 1/);
  const verify = await stasis(["prefetch", "/etc/hostname", "--verify"]);
  assert.equal(verify.code, 2);
  assert.match(verify.stderr, /E_USAGE: --verify needs --snapshot NAME/);
  const missing = await stasis(["residency", "--snapshot", "nope", "--json"], home.env);
  assert.deepEqual([missing.code, missing.json.error.code], [3, "E_SNAPSHOT_NOT_FOUND"]);
  const dir = await stasis(["prefetch", "/nonexistent-stasis-path", "--json"]);
  assert.deepEqual([dir.code, dir.json.error.code], [3, "E_FILE_NOT_FOUND"]);
});

test("stasis prefetch, residency and evict --snapshot: the store's files, paths inside it, --verify", async (t) => {
  const home = tempHome();
  t.after(home.cleanup);
  const dir = join(home.home, "snapshots", "snap");
  mkdirSync(join(dir, "images"), { recursive: true });
  writeFile(join(dir, "images", "pages-1.img"), 3 * MiB);
  writeFile(join(dir, "weights.bin"), MiB + 5);
  const files = await digestFiles(
    dir,
    [
      { path: "images/pages-1.img", role: "image" },
      { path: "weights.bin", role: "weights" },
    ],
    { chunkSize: MiB },
  );
  writeFileSync(join(dir, "manifest.json"), JSON.stringify({ ...sampleManifest(), name: "snap", files }));
  const verified = await stasis(["prefetch", "--snapshot", "snap", "--verify", "--json"], home.env);
  assert.equal(verified.code, 0, verified.stderr);
  assert.deepEqual(
    [verified.json.snapshot, verified.json.files, verified.json.bytesVerified],
    ["snap", 2, 4 * MiB + 5],
  );
  const images = await stasis(["residency", "--snapshot", "snap", "images", "--json"], home.env);
  assert.equal(images.code, 0, images.stderr);
  assert.deepEqual(
    images.json.files.map((f: { path: string }) => f.path),
    [join(dir, "images", "pages-1.img")],
  );
  const outside = await stasis(["prefetch", "--snapshot", "snap", "../../../etc", "--json"], home.env);
  assert.deepEqual([outside.code, outside.json.error.code], [4, "E_PATH_OUTSIDE_SNAPSHOT"]);
  const evicted = await stasis(["evict", "--snapshot", "snap", "--json"], home.env);
  assert.deepEqual([evicted.code, evicted.json.total.files], [0, 2]);
  const fd = openSync(join(dir, "weights.bin"), "r+");
  writeSync(fd, Buffer.from("x"), 0, 1, MiB + 1);
  closeSync(fd);
  const tampered = await stasis(["prefetch", "--snapshot", "snap", "--verify", "--json"], home.env);
  assert.deepEqual([tampered.code, tampered.json.error.code], [4, "E_DIGEST_MISMATCH"]);
  assert.match(tampered.json.error.message, /weights\.bin: chunk 1 \(bytes 1048576\.\.1048581\)/);
});
