import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { pageSize } from "../native/libc.js";
import { evict } from "./evict.js";
import { residency } from "./residency.js";
import { scratch, settled, writeFile } from "../testing/testfs.js";

function readAll(path: string, size: number): void {
  const fd = openSync(path, "r");
  try {
    readSync(fd, Buffer.alloc(size), 0, size, 0);
  } finally {
    closeSync(fd);
  }
}

test("evict drops a file from the page cache and reports what was resident", async (t) => {
  const s = scratch("evict");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const path = join(s.dir, "f");
  writeFile(path, 4 << 20);
  // Read again if the kernel reclaimed a page of its own accord (when memory is short) before the evict looked.
  const [e] = await settled(
    async () => (readAll(path, 4 << 20), evict([path])),
    (r) => r[0]?.residentBytesBefore === 4 << 20,
  );
  assert.equal(e!.residentBytesBefore, 4 << 20);
  assert.equal(e!.residentBytesAfter, 0);
  assert.equal((await residency([path]))[0]!.residentBytes, 0);
});

test("evict of a range drops only that range (in whole folios: 2 MiB-aligned here)", async (t) => {
  const s = scratch("evict");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const ps = pageSize();
  const path = join(s.dir, "f");
  writeFile(path, 16 << 20);
  const whole = await settled(
    async () => {
      readAll(path, 16 << 20);
      await evict([{ path, offset: 8 << 20, length: 8 << 20 }]);
      return (await residency([path]))[0]!.residentPages;
    },
    (pages) => pages === (8 << 20) / ps,
  );
  assert.equal(whole, (8 << 20) / ps);
  assert.equal((await residency([{ path, offset: 0, length: 8 << 20 }]))[0]!.residentPages, (8 << 20) / ps);
});

test("evict of a file with dirty pages syncs it first, then drops it", async (t) => {
  const s = scratch("evict");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const path = join(s.dir, "dirty");
  const fd = openSync(path, "w");
  writeSync(fd, Buffer.alloc(1 << 20, 7)); // not synced: dirty pages, which DONTNEED alone keeps
  closeSync(fd);
  const [e] = await evict([path]);
  assert.equal(e!.residentBytesBefore, 1 << 20);
  assert.equal(e!.residentBytesAfter, 0);
});
