import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { cachestat, pageSize } from "../native/libc.js";
import { residency } from "./residency.js";
import { evict } from "./evict.js";
import { residentIn } from "./_files.js";
import { dropFile, scratch, settled, writeFile } from "../testing/testfs.js";

const FINCORE = "/usr/bin/fincore";

function readRange(path: string, offset: number, length: number): void {
  const fd = openSync(path, "r");
  try {
    readSync(fd, Buffer.alloc(length), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

/** util-linux fincore's count of resident pages, per file. */
function fincore(paths: string[]): number[] {
  const r = spawnSync(FINCORE, ["--bytes", "--noheadings", "--raw", "-o", "PAGES", ...paths], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split("\n").map(Number);
}

test("residency agrees with util-linux fincore, page for page, after evicting and reading parts", async (t) => {
  if (!existsSync(FINCORE)) return t.skip("util-linux fincore is not installed");
  const s = scratch("residency");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const ps = pageSize();
  const files = ["whole", "part", "none", "odd", "empty"].map((n) => join(s.dir, n));
  const sizes = [4 << 20, 16 << 20, 2 << 20, (3 << 20) + 123, 0];
  files.forEach((f, i) => writeFile(f, sizes[i]!));
  files.forEach(dropFile);
  readRange(files[0]!, 0, sizes[0]!);
  readRange(files[1]!, 5 << 20, 3 * ps);
  readRange(files[3]!, sizes[3]! - 100, 100);
  // Another process may drop caches between our look and fincore's: retry until two looks agree around it.
  let last = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = (await residency(files)).map((r) => r.residentPages);
    const theirs = fincore(files);
    const after = (await residency(files)).map((r) => r.residentPages);
    if (before.join() === after.join()) {
      assert.deepEqual(before, theirs);
      assert.equal(before[0], sizes[0]! / ps);
      assert.ok(before[1]! >= 3 && before[1]! < sizes[1]! / ps, `part of "part" is resident: ${before[1]}`);
      assert.equal(before[2], 0);
      assert.ok(before[3]! >= 1);
      assert.equal(before[4], 0);
      return;
    }
    last = `${before} vs ${after}`;
  }
  assert.fail(`residency kept changing under us: ${last}`);
});

test("residency of a byte range counts the pages it touches and only its own bytes", async (t) => {
  const s = scratch("residency");
  t.after(s.cleanup);
  const ps = pageSize();
  const path = join(s.dir, "f");
  writeFile(path, 10 * ps);
  readRange(path, 0, 10 * ps);
  const [r] = await residency([{ path, offset: ps + 100, length: 2 * ps }]);
  assert.deepEqual(
    {
      size: r!.size,
      offset: r!.offset,
      length: r!.length,
      pages: r!.pages,
      residentPages: r!.residentPages,
      residentBytes: r!.residentBytes,
    },
    { size: 10 * ps, offset: ps + 100, length: 2 * ps, pages: 3, residentPages: 3, residentBytes: 2 * ps },
  );
});

test("residency errors: missing file, directory, FIFO, range past the end", async (t) => {
  const s = scratch("residency");
  t.after(s.cleanup);
  const code = (c: string) => (e: unknown) => e instanceof StasisError && e.code === c;
  await assert.rejects(residency([join(s.dir, "nope")]), code("E_FILE_NOT_FOUND"));
  mkdirSync(join(s.dir, "d"));
  await assert.rejects(
    residency([join(s.dir, "d")]),
    (e: unknown) => code("E_NOT_A_FILE")(e) && /is a directory/.test((e as Error).message),
  );
  if (spawnSync("mkfifo", [join(s.dir, "fifo")]).status === 0) {
    await assert.rejects(
      residency([join(s.dir, "fifo")]),
      (e: unknown) => code("E_NOT_A_FILE")(e) && /FIFO/.test((e as Error).message),
    );
  }
  writeFile(join(s.dir, "f"), 1000);
  await assert.rejects(residency([{ path: join(s.dir, "f"), offset: 900, length: 200 }]), code("E_USAGE"));
});

test("cachestat and mincore count the same pages and bytes for ranges of every shape", async (t) => {
  const s = scratch("residency");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const ps = pageSize();
  const path = join(s.dir, "f");
  const MiB = 1 << 20;
  const size = 8 * MiB + 123;
  writeFile(path, size);
  const fd = openSync(path, "r");
  t.after(() => closeSync(fd));
  if (cachestat(fd, 0, size) === undefined)
    return t.skip("this kernel has no cachestat (before 6.5): mincore is all there is");
  // The kernel may reclaim a page of its own accord when memory is short: then the file is read again.
  const resident = await settled(
    async () => {
      readRange(path, 0, size);
      await evict([{ path, offset: 2 * MiB, length: 2 * MiB }]); // a hole of whole folios: resident, hole, resident
      return residentIn(fd, 0, size, path).residentBytes;
    },
    (r) => r === size - 2 * MiB,
  );
  assert.equal(resident, size - 2 * MiB);
  const ranges = [
    [0, size],
    [1, 1],
    [ps - 1, 2],
    [2 * MiB - 100, 200],
    [2 * MiB + 5, 100],
    [MiB + 7, 4 * MiB],
    [4 * MiB - ps, 3 * ps],
    [size - 123, 123],
    [size - 200, 150],
  ];
  for (const [offset, length] of ranges) {
    const both = () =>
      [residentIn(fd, offset!, length!, path), residentIn(fd, offset!, length!, path, "mincore")] as const;
    const [cs, mc] = await settled(both, ([a, b]) => JSON.stringify(a) === JSON.stringify(b), 3);
    assert.deepEqual(cs, mc, `range ${offset}+${length}`);
  }
});
