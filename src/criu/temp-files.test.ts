import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fields, criuTempFiles, removeTempFiles } from "./temp-files.js";
import { StasisError } from "../errors.js";

// Protobuf by hand, as CRIU writes it: varint fields (wire type 0) and length-delimited ones (2).
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  return [...out, n];
};
const vfield = (f: number, v: number) => [...varint(f * 8), ...varint(v)];
const bfield = (f: number, b: number[]) => [...varint(f * 8 + 2), ...varint(b.length), ...b];
const image = (magic: number[], ...entries: number[][]) => {
  const parts = [Buffer.from(Uint32Array.from(magic).buffer)];
  for (const e of entries) parts.push(Buffer.from(Uint32Array.from([e.length]).buffer), Buffer.from(e));
  return Buffer.concat(parts);
};
const reg = (id: number, name: string) =>
  bfield(3, [...vfield(1, id), ...vfield(2, 0x8002), ...vfield(3, 0), ...bfield(6, [...Buffer.from(name)])]);

test("CRIU's temporary files from the images: <path>.cr.<hex id>.ghost, a link_remap's path", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ghosts-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const common = 0x54564319;
  writeFileSync(
    join(dir, "files.img"),
    image(
      [common, 0x56303138],
      [...vfield(1, 1), ...vfield(2, 7), ...reg(7, "/tmp/gone")],
      [...vfield(1, 1), ...vfield(2, 9), ...reg(9, "/dev/shm/sem.x")],
      [...vfield(1, 1), ...vfield(2, 11), ...reg(11, "/tmp/old")],
    ),
  );
  writeFileSync(
    join(dir, "remap-fpath.img"),
    image(
      [common, 0x59133954],
      [...vfield(1, 7), ...vfield(2, 0x1a), ...vfield(3, 1)], // ghost
      [...vfield(1, 9), ...vfield(2, 3), ...vfield(3, 0)], // linked: a link_remap file linked back under the old name
      [...vfield(1, 11), ...vfield(2, 0x80000002)], // an image from before remap_type: the top bit says ghost
    ),
  );
  assert.deepEqual(await criuTempFiles(dir), ["/dev/shm/sem.x", "/tmp/gone.cr.1a.ghost", "/tmp/old.cr.2.ghost"]);
});

test("a snapshot without remaps has no temporary files; a truncated image is a clear error", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ghosts-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(await criuTempFiles(dir), []);
  writeFileSync(
    join(dir, "remap-fpath.img"),
    image([0x54564319, 0x59133954], [...vfield(1, 7), ...vfield(2, 1), ...vfield(3, 1)]).subarray(0, 14),
  );
  await assert.rejects(
    criuTempFiles(dir),
    (e: unknown) => e instanceof StasisError && e.code === "E_MANIFEST_INVALID" && /runs past the end/.test(e.message),
  );
});

test("fields reads varints past 2^31 and skips fixed-width fields", () => {
  const f = fields(
    Buffer.from([...vfield(2, 0x80000002), 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4, ...bfield(6, [104, 105])]),
  );
  assert.equal(f.varint.get(2), 0x80000002);
  assert.equal(f.bytes.get(6)?.toString(), "hi");
});

test("removeTempFiles removes what is there and says which", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ghosts-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "a.cr.1.ghost"), "x");
  assert.deepEqual(await removeTempFiles([join(dir, "a.cr.1.ghost"), join(dir, "b.cr.2.ghost")]), [
    join(dir, "a.cr.1.ghost"),
  ]);
  assert.equal(existsSync(join(dir, "a.cr.1.ghost")), false);
});
