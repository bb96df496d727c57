import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { StasisError, fsError } from "../errors.js";
import type { Events } from "../events.js";
import { stasisHome, paths } from "../home.js";
import { exists } from "../files.js";
import { locateCriu } from "../criu/locate.js";
import { gpuIdentityFromProc } from "../cuda/gpus.js";
import { checkFingerprint } from "../restore/fingerprint-check.js";
import { parseManifest } from "../store/manifest.js";
import { combine } from "../store/digest.js";
import { PRIVATE_DIR, PRIVATE_FILE } from "../store/private.js";
import { Staging, checkName, openSnapshot } from "../store/store.js";
import type { Manifest } from "../store/manifest.js";
import { ChunkCache, sha256 } from "./cache.js";
import { freeBytes } from "../store/space.js";
import { recordVerified, stampFiles } from "../store/verified.js";
import { formatBytes } from "../cli/render/format.js";
import { openRemote, type Remote, type RemoteOptions } from "./client.js";
import { distinctChunks, remoteConcurrency, type ChunkRef } from "./push.js";
import { eachLimit } from "./_pool.js";
import { formatRemote, keys, parseRemoteSnapshot, type RemoteStore } from "./url.js";

export interface PullOptions extends RemoteOptions {
  /** `s3://bucket/prefix/NAME` */
  from: string;
  /** The name in the local store (default: NAME). */
  as?: string;
  /** Skip the fingerprint check (a snapshot of another kind of machine is pulled anyway). */
  force?: boolean;
  /** A snapshot of that name here with the same files is used as it is (`restore s3://...`); else E_SNAPSHOT_EXISTS. */
  reuse?: boolean;
  home?: string;
}

export interface PullResult {
  snapshot: string;
  remote: string;
  snapshotDir: string;
  /** False where the store had it already (`restore s3://...` pulls only then). */
  pulled: boolean;
  chunks: number;
  fetched: number;
  fromCache: number;
  bytesFetched: number;
  bytesFromCache: number;
  bytes: number;
  durationMs: number;
}

/**
 * Pulls a snapshot from `s3://bucket/prefix/NAME` into the store. The manifest comes first and its fingerprint is
 * checked against this machine before any chunk moves; each chunk comes from the node's chunk cache or the bucket,
 * its sha256 checked, and is written at its places in a staging folder that becomes the snapshot in one rename.
 * A pull that fails or is killed leaves no snapshot; the chunks it had fetched stay in the cache for the next try.
 */
export async function pull(opts: PullOptions, events: Events): Promise<PullResult> {
  const started = events.t();
  const home = opts.home ?? stasisHome();
  const src = parseRemoteSnapshot(opts.from);
  const name = checkName(opts.as ?? src.name);
  const remote = await openRemote(src, opts);
  const text = await events.phase("pull-manifest", () => remote.getIfExists(keys.manifest(src, src.name)));
  if (!text) {
    throw new StasisError(
      "E_SNAPSHOT_NOT_FOUND",
      `no snapshot at ${formatRemote(src, src.name)} (${remote.endpoint})`,
      {
        hint: `list what is there with \`stasis ls ${formatRemote(src)}\``,
      },
    );
  }
  const manifest = checkChunkPlan(
    parseManifest(text.toString("utf8"), formatRemote(src, src.name)),
    formatRemote(src, src.name),
  );
  const local = await openSnapshot(name, home).catch(() => undefined);
  if (local && opts.reuse && sameFiles(local.manifest, manifest)) {
    return {
      snapshot: name,
      remote: formatRemote(src, src.name),
      snapshotDir: local.dir,
      pulled: false,
      chunks: distinctChunks(manifest).size,
      fetched: 0,
      fromCache: 0,
      bytesFetched: 0,
      bytesFromCache: 0,
      bytes: manifest.files.reduce((a, f) => a + f.size, 0),
      durationMs: events.t() - started,
    };
  }
  if (local || (await exists(paths.snapshot(name, home)))) {
    throw new StasisError(
      "E_SNAPSHOT_EXISTS",
      `a snapshot named "${name}" already exists here${opts.reuse ? ", with other files" : ""}`,
      {
        hint: `remove it first with \`stasis rm ${name}\`, or pull it under another name: stasis pull ${opts.from} NEW`,
      },
    );
  }
  if (!opts.force) {
    await events.phase("fingerprint", async () => {
      const criu = await locateCriu();
      const gpu = manifest.fingerprint.gpu ? await gpuIdentityFromProc() : undefined;
      await checkFingerprint(manifest, { force: false, criuVersion: criu.version, gpu }, events);
    });
  }
  const cache = await ChunkCache.open(home);
  const staging = await Staging.begin(name, home);
  const r = { fetched: 0, fromCache: 0, bytesFetched: 0, bytesFromCache: 0 };
  const chunks = distinctChunks(manifest);
  const bytes = manifest.files.reduce((a, f) => a + f.size, 0);
  const handles = new Map<string, FileHandle>();
  try {
    await checkSpace(staging.dir, home, bytes, cache, chunks);
    for (const f of manifest.files) {
      const path = join(staging.dir, f.path);
      await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR });
      const fh = await open(path, "wx", PRIVATE_FILE).catch((err) => {
        throw fsError(err, path, "create pulled file");
      });
      handles.set(f.path, fh);
      await fh.truncate(f.size);
    }
    let done = 0;
    await events.phase(
      "pull-chunks",
      () =>
        eachLimit([...chunks.values()], remoteConcurrency(), async (refs) => {
          const buf = await chunkBytes(refs[0]!, { remote, src, cache, r });
          for (const ref of refs) {
            const { bytesWritten } = await handles
              .get(ref.path)!
              .write(buf, 0, ref.length, ref.offset)
              .catch((err) => {
                throw fsError(err, join(staging.dir, ref.path), "write pulled file");
              });
            if (bytesWritten !== ref.length)
              throw new StasisError("E_IO", `short write to ${ref.path} of the pulled snapshot`);
            done += ref.length;
          }
          events.progress("pull-chunks", done, bytes);
        }),
      () => ({ bytes: r.bytesFetched, detail: { ...r } }),
    );
    for (const fh of handles.values()) await fh.sync();
    const stamps = await stampFiles(staging.dir, manifest.files);
    const dir = await staging.commit({ ...manifest, name });
    // Every byte written was checked against its digest: the first restore need not hash the files again
    // (as after a capture; a file changed since loses its stamp).
    await recordVerified(dir, stamps);
    return {
      snapshot: name,
      remote: formatRemote(src, src.name),
      snapshotDir: dir,
      pulled: true,
      chunks: chunks.size,
      ...r,
      bytes,
      durationMs: events.t() - started,
    };
  } catch (err) {
    await staging.abort(); // no half snapshot; the cache keeps the checked chunks for the next try
    throw err;
  } finally {
    for (const fh of handles.values()) await fh.close().catch(() => undefined);
    await cache.trim().catch(() => undefined);
  }
}

/** A chunk's bytes, from the cache or the bucket, its digest checked either way. */
async function chunkBytes(
  ref: ChunkRef,
  ctx: {
    remote: Remote;
    src: RemoteStore;
    cache: ChunkCache;
    r: { fetched: number; fromCache: number; bytesFetched: number; bytesFromCache: number };
  },
): Promise<Buffer> {
  const cached = await ctx.cache.get(ref.digest);
  if (cached && cached.length === ref.length) {
    ctx.r.fromCache++;
    ctx.r.bytesFromCache += ref.length;
    return cached;
  }
  const key = keys.chunk(ctx.src, ref.digest);
  const buf = await ctx.remote.getIfExists(key);
  if (!buf) {
    throw new StasisError(
      "E_REMOTE_NOT_FOUND",
      `chunk ${ref.digest} of ${ref.path} is missing from s3://${ctx.src.bucket}/${key}`,
      {
        hint: "push the snapshot again from a machine that has it: a push sends the chunks the bucket lacks",
      },
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
  await ctx.cache.put(ref.digest, buf);
  ctx.r.fetched++;
  ctx.r.bytesFetched += ref.length;
  return buf;
}

/** True where two manifests list the same files with the same contents (the same snapshot, whatever its name). */
export function sameFiles(a: Manifest, b: Manifest): boolean {
  const key = (m: Manifest) => JSON.stringify(m.files.map((f) => [f.path, f.size, f.sha256]).sort());
  return key(a) === key(b);
}

/**
 * Refuses a pull the disk cannot hold before any chunk moves: the snapshot's bytes, plus the chunks the cache will
 * keep that it lacks (the cache is trimmed only after the pull).
 */
async function checkSpace(
  dir: string,
  home: string,
  bytes: number,
  cache: ChunkCache,
  chunks: Map<string, ChunkRef[]>,
) {
  let cached = 0;
  if (cache.limitBytes > 0) {
    for (const [digest, refs] of chunks) cached += (await cache.has(digest)) ? 0 : refs[0]!.length;
  }
  const need = bytes + cached;
  const free = await freeBytes(dir).catch(() => undefined);
  if (free !== undefined && free < need) {
    throw new StasisError(
      "E_NO_SPACE",
      `the store at ${home} has ${formatBytes(free)} free; this pull needs ${formatBytes(need)} ` +
        `(the snapshot, ${formatBytes(bytes)}, and the chunks the node's cache keeps, ${formatBytes(cached)})`,
      {
        hint:
          "free space there, point STASIS_HOME at a larger disk, or make the chunk cache smaller " +
          "(STASIS_CHUNK_CACHE_GB, 0: off)",
        details: { home, freeBytes: free, neededBytes: need },
      },
    );
  }
}

/**
 * Checks that each file's chunks cover it exactly and make up its digest, as a capture writes them: the pull
 * checks every byte it writes against these chunks and stamps the files verified, so a manifest whose chunks
 * left part of a file uncovered would have that part pass unchecked.
 */
export function checkChunkPlan(m: Manifest, where: string): Manifest {
  for (const f of m.files) {
    const count = Math.max(1, Math.ceil(f.size / f.chunkSize));
    const why =
      f.chunks.length !== count
        ? `${f.chunks.length} chunks of ${f.chunkSize} bytes for ${f.size} bytes (${count} expected)`
        : combine(f.chunks) !== f.sha256
          ? "its digest is not that of its chunks"
          : undefined;
    if (why) {
      throw new StasisError("E_MANIFEST_INVALID", `${where}: file ${f.path}: ${why}`, {
        hint: "the manifest in the store is damaged: push the snapshot again from a machine that has it",
      });
    }
  }
  return m;
}
