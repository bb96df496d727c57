import type { Config } from "../config/config.js";
import { StasisError } from "../errors.js";
import { sha256, type ChunkCache } from "./cache.js";
import type { Remote } from "./client.js";
import type { ChunkRef } from "./push.js";
import { keys, type RemoteStore } from "./url.js";

/**
 * The part size of a download (`Config.remotePartMb`, STASIS_REMOTE_PART_MB; unset: 16 MiB; 0: whole objects): a
 * chunk larger than that is fetched as ranged GETs, its parts in parallel, so that one chunk (a snapshot's last, or
 * the only one a restore still waits for) moves on several connections. On loopback it neither gained nor cost
 * (docs/remote.md).
 */
export const partBytes = (config: Pick<Config, "remotePartMb">): number => (config.remotePartMb ?? 16) * 1024 * 1024;

/**
 * The part size of an upload (the same STASIS_REMOTE_PART_MB; unset: one PUT per chunk): a chunk larger than that
 * is sent as a multipart upload, its parts in parallel. Whole by default: multipart was slower against versitygw on
 * loopback (the server copies the parts into the object at the end), and a chunk is at most 64 MiB, well within one
 * PUT's 5 GB; parts are for a store whose single connection is slower than the network.
 */
export const uploadPartBytes = (config: Pick<Config, "remotePartMb">): number =>
  (config.remotePartMb ?? 0) * 1024 * 1024;

/** What a transfer counts: chunks and bytes fetched from the store, and taken from the node's cache. */
export interface FetchCounts {
  fetched: number;
  fromCache: number;
  bytesFetched: number;
  bytesFromCache: number;
}

export const noCounts = (): FetchCounts => ({ fetched: 0, fromCache: 0, bytesFetched: 0, bytesFromCache: 0 });

/**
 * A chunk's bytes, from the node's cache or the store, its sha256 checked either way; `fresh` where it came from
 * the store (the caller keeps it in the cache once it is written where it belongs). A damaged chunk in the store
 * is E_DIGEST_MISMATCH naming its key, a missing one E_REMOTE_NOT_FOUND.
 */
export async function fetchChunk(
  ref: ChunkRef,
  ctx: { remote: Remote; src: RemoteStore; cache: ChunkCache; counts: FetchCounts; partSize: number },
): Promise<{ buf: Buffer; fresh: boolean }> {
  const cached = await ctx.cache.get(ref.digest);
  if (cached && cached.length === ref.length) {
    ctx.counts.fromCache++;
    ctx.counts.bytesFromCache += ref.length;
    return { buf: cached, fresh: false };
  }
  const key = keys.chunk(ctx.src, ref.digest);
  const buf = await getChunk(ctx.remote, key, ref.length, ctx.partSize);
  if (!buf) {
    throw new StasisError(
      "E_REMOTE_NOT_FOUND",
      `chunk ${ref.digest} of ${ref.path} is missing from s3://${ctx.src.bucket}/${key}`,
      { hint: "push the snapshot again from a machine that has it: a push sends the chunks the bucket lacks" },
    );
  }
  const got = sha256(buf);
  if (got !== ref.digest || buf.length !== ref.length) {
    throw new StasisError(
      "E_DIGEST_MISMATCH",
      `chunk s3://${ctx.src.bucket}/${key} (${ref.path} at offset ${ref.offset}) is damaged: its sha256 is ${got}`,
      {
        hint: "delete that object, then push the snapshot again from a machine that has it (nothing of it was kept)",
        details: { key, expected: ref.digest, got, bytes: buf.length },
      },
    );
  }
  ctx.counts.fetched++;
  ctx.counts.bytesFetched += ref.length;
  return { buf, fresh: true };
}

/**
 * An object of `length` bytes: one GET, or ranged GETs of `partSize` in parallel into one buffer (an object of
 * another size is refused by the size the store answers with).
 */
async function getChunk(remote: Remote, key: string, length: number, partSize: number): Promise<Buffer | undefined> {
  if (partSize === 0 || length <= partSize) return remote.getIfExists(key);
  const buf = Buffer.allocUnsafe(length);
  const starts = Array.from({ length: Math.ceil(length / partSize) }, (_, i) => i * partSize);
  const totals = await Promise.all(
    starts.map((at) => remote.getRange(key, at, buf.subarray(at, Math.min(length, at + partSize)))),
  );
  if (totals.some((t) => t === undefined)) return undefined;
  const other = totals.find((t) => t !== length);
  if (other !== undefined) {
    const what = `chunk ${key} in the store is damaged: ${other} bytes, ${length} expected`;
    throw new StasisError("E_DIGEST_MISMATCH", what, {
      hint: "delete that object, then push the snapshot again from a machine that has it (nothing of it was kept)",
      details: { key, bytes: other, expectedBytes: length },
    });
  }
  return buf;
}
