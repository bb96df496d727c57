import { test } from "node:test";
import assert from "node:assert/strict";
import { eagerRanges, parsePagemap } from "./pagemap.js";
import { mergeRanges } from "../restore/working-set.js";

/** A protobuf varint field (wire type 0). */
function field(n: number, v: bigint): number[] {
  const out = [(n << 3) | 0];
  let x = v;
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return out;
}

/** A pagemap image: the two magics, a head with pages_id, then one message per entry. */
function image(pagesId: number, entries: { vaddr: bigint; pages: number; flags?: number; compat?: boolean }[]): Buffer {
  const msg = (bytes: number[]) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(bytes.length);
    return Buffer.concat([len, Buffer.from(bytes)]);
  };
  const magics = Buffer.alloc(8);
  magics.writeUInt32LE(0x54564319, 0);
  magics.writeUInt32LE(0x56084025, 4);
  return Buffer.concat([
    magics,
    msg(field(1, BigInt(pagesId))),
    ...entries.map((e) =>
      msg([
        ...field(1, e.vaddr),
        ...field(2, e.compat ? BigInt(e.pages) : 0n),
        ...(e.flags === undefined ? [] : field(4, BigInt(e.flags))),
        ...(e.compat ? [] : field(5, BigInt(e.pages))),
      ]),
    ),
  ]);
}

const PRESENT = 4;
const LAZY = 2;
const PARENT = 1;

test("a pagemap image's entries, and the ranges of its pages image a lazy restore reads itself", () => {
  const pm = parsePagemap(
    image(7, [
      { vaddr: 0x7f0000000000n, pages: 2, flags: PRESENT }, // eager: bytes 0..8 KiB of the pages image
      { vaddr: 0x7f0000100000n, pages: 100, flags: PRESENT | LAZY }, // lazy: 8 KiB..408 KiB
      { vaddr: 0x7f0000200000n, pages: 1, flags: PRESENT }, // eager, 400 KiB after the first: its own range
      { vaddr: 0x7f0000300000n, pages: 3, flags: 0 }, // not in the image (zero pages)
      { vaddr: 0x7f0000400000n, pages: 4, flags: PRESENT | PARENT }, // in a parent snapshot's image
      { vaddr: 0x7f0000500000n, pages: 1, flags: PRESENT, compat: true }, // nr_pages only in the old field: right after the third
    ]),
  );
  assert.equal(pm.pagesId, 7);
  assert.deepEqual(pm.entries.map((e) => [e.vaddr, e.pages, e.flags]), [
    [0x7f0000000000n, 2, PRESENT],
    [0x7f0000100000n, 100, PRESENT | LAZY],
    [0x7f0000200000n, 1, PRESENT],
    [0x7f0000300000n, 3, 0],
    [0x7f0000400000n, 4, PRESENT | PARENT],
    [0x7f0000500000n, 1, PRESENT],
  ]);
  const K = 4096;
  assert.deepEqual(eagerRanges(pm), [[0, 2 * K], [102 * K, K], [103 * K, K]], "one range per entry");
  // As the restore reads them: merged by the working set's helper.
  assert.deepEqual(mergeRanges(eagerRanges(pm), 104 * K, 0), [[0, 2 * K], [102 * K, 2 * K]]);
  assert.deepEqual(mergeRanges(eagerRanges(pm), 104 * K, 100 * K), [[0, 104 * K]], "closer than the gap: one read");
});

test("what is not a pagemap image is refused, naming the file", () => {
  const good = image(1, [{ vaddr: 1n, pages: 1, flags: PRESENT }]);
  assert.throws(() => parsePagemap(Buffer.from("not an image at all"), "x.img"), /x\.img: not a CRIU pagemap image \(magic\)/);
  assert.throws(() => parsePagemap(good.subarray(0, good.length - 2), "x.img"), /cut message/);
  assert.throws(() => parsePagemap(good.subarray(0, 8), "x.img"), /no pagemap_head/);
  const noPages = image(1, [{ vaddr: 1n, pages: 0 }]);
  assert.deepEqual(eagerRanges(parsePagemap(noPages)), []);
});
