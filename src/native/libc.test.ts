import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, ftruncateSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { FADV, MADV, errnoOf, fadvise, madvise, mincore, pageSize, readahead, withMapping } from "./libc.js";
import { dropFile, scratch, writeFile } from "../testing/testfs.js";

const resident = (vec: Uint8Array) => vec.reduce((a, v) => a + (v & 1), 0);

test("pageSize is a power of two of at least 4 KiB", () => {
  const ps = pageSize();
  assert.ok(ps >= 4096 && (ps & (ps - 1)) === 0, String(ps));
});

test("mincore sees pages arrive after a read and leave after POSIX_FADV_DONTNEED", (t) => {
  const s = scratch("libc");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const path = join(s.dir, "f");
  const ps = pageSize();
  writeFile(path, 64 * ps);
  dropFile(path);
  const fd = openSync(path, "r");
  t.after(() => closeSync(fd));
  const vec = new Uint8Array(64);
  withMapping(fd, 0, 64 * ps, path, (m) => mincore(m, vec));
  assert.equal(resident(vec), 0);
  readSync(fd, Buffer.alloc(ps), 0, ps, 0);
  withMapping(fd, 0, 64 * ps, path, (m) => mincore(m, vec));
  assert.ok(vec[0]! & 1, "the page just read is resident");
  fadvise(fd, 0, 0, FADV.DONTNEED, path);
  withMapping(fd, 0, 64 * ps, path, (m) => mincore(m, vec));
  assert.equal(resident(vec), 0);
  readahead(fd, 0, 64 * ps, path);
  withMapping(fd, 0, 64 * ps, path, (m) => madvise(m, MADV.POPULATE_READ));
  withMapping(fd, 0, 64 * ps, path, (m) => mincore(m, vec));
  assert.equal(resident(vec), 64);
});

test("a failed call becomes a StasisError naming the call and its errno", () => {
  assert.throws(
    () => fadvise(987654, 0, 0, FADV.WILLNEED, "/nowhere"),
    (e: unknown) =>
      e instanceof StasisError &&
      e.code === "E_IO" &&
      errnoOf(e) === "EBADF" &&
      /posix_fadvise on \/nowhere failed: EBADF/.test(e.message),
  );
  assert.throws(
    () => withMapping(987654, 0, 4096, undefined, () => 0),
    (e: unknown) => errnoOf(e) === "EBADF",
  );
  assert.throws(
    () => withMapping(0, 1, 4096, undefined, () => 0),
    (e: unknown) => e instanceof StasisError && e.code === "E_INTERNAL",
  );
});

test("MADV_POPULATE_READ past the end of a file that shrank is EFAULT, not SIGBUS", (t) => {
  const s = scratch("libc");
  t.after(s.cleanup);
  const path = join(s.dir, "f");
  const ps = pageSize();
  writeFile(path, 16 * ps);
  const fd = openSync(path, "r+");
  t.after(() => closeSync(fd));
  assert.throws(
    () =>
      withMapping(fd, 0, 16 * ps, path, (m) => {
        ftruncateSync(fd, 3 * ps);
        madvise(m, MADV.POPULATE_READ);
      }),
    (e: unknown) => errnoOf(e) === "EFAULT",
  );
});
