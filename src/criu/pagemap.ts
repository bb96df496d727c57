import { readFile } from "node:fs/promises";
import { StasisError } from "../errors.js";

/**
 * CRIU's pagemap images (pagemap-PID.img): which pages of a process's memory its pages image (pages-ID.img) holds,
 * and which of them a lazy restore leaves to the lazy-pages daemon. Why stasis reads them: in a restore from a cold
 * page cache CRIU reads the pages it restores itself (the ones not marked lazy: file-backed private pages, and the
 * like) one small pread at a time, scattered over the pages image, each waiting for the disk; read ahead of the rest,
 * they are in memory when CRIU asks (`eagerRanges`).
 *
 * The format (criu/images/pagemap.proto, criu/include/magic.h): two little-endian u32 magics (IMG_COMMON_MAGIC,
 * PAGEMAP_MAGIC), then messages, each a u32 length and that many bytes of protobuf: first a pagemap_head (1:
 * pages_id), then a pagemap_entry per run of pages (1: vaddr, 2: compat_nr_pages, 3: in_parent, 4: flags, 5:
 * nr_pages). The pages of the entries that are present (and not in a parent snapshot) follow each other in the
 * pages image, in entry order.
 */

const IMG_COMMON_MAGIC = 0x54564319;
const PAGEMAP_MAGIC = 0x56084025;
const PE_PARENT = 1 << 0;
const PE_LAZY = 1 << 1;
const PE_PRESENT = 1 << 2;
const PAGE = 4096;

export interface PagemapEntry {
  vaddr: bigint;
  pages: number;
  flags: number;
  inParent: boolean;
}

export interface Pagemap {
  /** The pages image: pages-<pagesId>.img beside the pagemap. */
  pagesId: number;
  entries: PagemapEntry[];
}

/** A pagemap image's entries; E_IO when it is not one. */
export function parsePagemap(buf: Buffer, path = "pagemap"): Pagemap {
  const bad = (why: string) => new StasisError("E_IO", `${path}: not a CRIU pagemap image (${why})`, { hint: "capture the snapshot again" });
  if (buf.length < 8 || buf.readUInt32LE(0) !== IMG_COMMON_MAGIC || buf.readUInt32LE(4) !== PAGEMAP_MAGIC) throw bad("magic");
  const messages: Map<number, bigint | boolean>[] = [];
  for (let at = 8; at < buf.length; ) {
    if (at + 4 > buf.length) throw bad("a cut message length");
    const len = buf.readUInt32LE(at);
    at += 4;
    if (at + len > buf.length) throw bad("a cut message");
    messages.push(fields(buf.subarray(at, at + len), bad));
    at += len;
  }
  const head = messages.shift();
  const pagesId = head?.get(1);
  if (typeof pagesId !== "bigint") throw bad("no pagemap_head");
  const entries = messages.map((m) => {
    const vaddr = m.get(1);
    const nr = m.get(5) ?? m.get(2);
    if (typeof vaddr !== "bigint" || typeof nr !== "bigint") throw bad("an entry without vaddr or pages");
    const flags = m.get(4);
    return { vaddr, pages: Number(nr), flags: typeof flags === "bigint" ? Number(flags) : 0, inParent: m.get(3) === 1n };
  });
  return { pagesId: Number(pagesId), entries };
}

/** The varint fields of one protobuf message (field number -> value; other wire types are skipped). */
function fields(msg: Buffer, bad: (why: string) => Error): Map<number, bigint | boolean> {
  const out = new Map<number, bigint | boolean>();
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= msg.length || shift > 63n) throw bad("a cut varint");
      const b = msg[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (at < msg.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) out.set(field, varint());
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) at += Number(varint());
    else throw bad(`wire type ${wire}`);
  }
  return out;
}

/**
 * The byte ranges [offset, length] of the pages image that a lazy restore reads itself (present, not lazy, not in a
 * parent), one per entry, in file order.
 */
export function eagerRanges(pm: Pagemap): [number, number][] {
  const out: [number, number][] = [];
  let offset = 0;
  for (const e of pm.entries) {
    if (!(e.flags & PE_PRESENT) || e.flags & PE_PARENT || e.inParent) continue;
    const length = e.pages * PAGE;
    if (!(e.flags & PE_LAZY)) out.push([offset, length]);
    offset += length;
  }
  return out;
}

/** The pagemaps of a snapshot's images folder, from the manifest's image paths. */
export async function readPagemaps(paths: string[]): Promise<{ path: string; pagemap: Pagemap }[]> {
  return Promise.all(paths.map(async (path) => ({ path, pagemap: parsePagemap(await readFile(path), path) })));
}
