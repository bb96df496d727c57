import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";

/**
 * The files CRIU's restore of these images makes for a moment and removes when done, by path:
 * - ghost files: a file the tree held open after its name was removed, small enough for CRIU to carry its contents in
 *   the images (ghost-file-N.img), is written back as `<its old path>.cr.<remap id, hex>.ghost`, created exclusively;
 * - the names link_remap files are linked to: a file kept as `link_remap.N` (criu/kept-files.ts) is linked back under
 *   the name the tree opened it by (`/dev/shm/sem.XXXXXX`), opened, and that name removed again.
 * A restore killed half-way leaves them behind, and every later restore of the snapshot failed on its ghost file
 * ("Can't create ghost regfile: File exists"); two restores at once failed on each other's. So a restore learns the
 * paths from the images before CRIU runs, records them in its instance record (their owner), and refuses or removes
 * what it finds there (instances/claim.ts).
 */
export async function criuTempFiles(imagesDir: string): Promise<string[]> {
  try {
    return await readGhostPaths(imagesDir);
  } catch (err) {
    if (err instanceof RangeError) throw unreadable(imagesDir, `a malformed entry (${err.message})`);
    throw err;
  }
}

async function readGhostPaths(imagesDir: string): Promise<string[]> {
  const remaps = await entries(join(imagesDir, "remap-fpath.img"));
  if (remaps.length === 0) return [];
  const ghosts = new Map<number, number>(); // the file's id -> its remap id
  const linked = new Set<number>(); // ids of files opened through a link_remap file
  for (const e of remaps) {
    const f = fields(e);
    let remapId = f.varint.get(2) ?? 0;
    // Images from before remap_type say "ghost" with the remap id's top bit.
    const type = f.varint.get(3) ?? (remapId >= 0x80000000 ? REMAP_GHOST : REMAP_LINKED);
    remapId = remapId % 0x80000000;
    if (!f.varint.has(1)) continue;
    if (type === REMAP_GHOST) ghosts.set(f.varint.get(1)!, remapId);
    else if (type === REMAP_LINKED) linked.add(f.varint.get(1)!);
  }
  if (ghosts.size === 0 && linked.size === 0) return [];
  const out: string[] = [];
  for (const e of await entries(join(imagesDir, "files.img"))) {
    const reg = fields(e).bytes.get(3);
    if (!reg) continue;
    const r = fields(reg);
    const id = r.varint.get(1);
    const name = r.bytes.get(6);
    if (id === undefined || !name) continue;
    // Without a mount namespace of the tree's own (stasis dumps none) CRIU makes them under "/".
    const path = `/${name.toString("utf8").replace(/^\/+/, "")}`;
    if (ghosts.has(id)) out.push(`${path}.cr.${ghosts.get(id)!.toString(16)}.ghost`);
    if (linked.has(id)) out.push(path);
  }
  return [...new Set(out)].sort();
}

/** Whether CRIU made `path` as a ghost file (a name no other program uses). */
export function isGhostFile(path: string): boolean {
  return /\.cr\.[0-9a-f]+\.ghost$/.test(path);
}

/** Removes those of `paths` that are there; returns the ones it removed. */
export async function removeTempFiles(paths: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const p of paths) {
    if (!(await stat(p).catch(() => undefined))) continue;
    await rm(p, { force: true, recursive: true });
    removed.push(p);
  }
  return removed;
}

const REMAP_LINKED = 0;
const REMAP_GHOST = 1;
/** The magics before an image's entries: one for the kind of image, after a common one (CRIU's images/magic.h). */
const IMG_COMMON_MAGIC = 0x54564319;
const IMG_SERVICE_MAGIC = 0x55105940;

/** An image's entries (each a u32 size, then a protobuf message); none where the image is absent. */
async function entries(path: string): Promise<Buffer[]> {
  const buf = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!buf || buf.length < 4) return [];
  const first = buf.readUInt32LE(0);
  let at = first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC ? 8 : 4;
  const out: Buffer[] = [];
  while (at + 4 <= buf.length) {
    const size = buf.readUInt32LE(at);
    at += 4;
    if (at + size > buf.length) throw unreadable(path, "an entry runs past the end of the file");
    out.push(buf.subarray(at, at + size));
    at += size;
  }
  return out;
}

/** A protobuf message's varint and length-delimited fields by number (the last of each, as protobuf reads them). */
export function fields(msg: Buffer): { varint: Map<number, number>; bytes: Map<number, Buffer> } {
  const varint = new Map<number, number>();
  const bytes = new Map<number, Buffer>();
  let at = 0;
  const readVarint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (at >= msg.length) throw new RangeError("varint past the end");
      const b = msg[at++]!;
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
    }
  };
  while (at < msg.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        varint.set(field, readVarint());
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        const len = readVarint();
        bytes.set(field, msg.subarray(at, at + len));
        at += len;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new RangeError(`wire type ${key & 7}`);
    }
  }
  return { varint, bytes };
}

function unreadable(path: string, why: string): StasisError {
  return new StasisError("E_MANIFEST_INVALID", `cannot read CRIU image ${path}: ${why}`, {
    hint: "the snapshot's images are damaged: `stasis inspect --verify` checks them against their digests",
  });
}
