import type { Config } from "../config/config.js";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import { stasisHome, paths } from "../home.js";
import { exists } from "../files.js";
import { locateCriu } from "../criu/locate.js";
import { gpuIdentityFromProc } from "../cuda/gpus.js";
import { checkFingerprint } from "../fingerprint/check.js";
import { parseManifest } from "../store/manifest.js";
import { combine } from "../store/digest.js";
import { Staging, checkName, openSnapshot } from "../store/store.js";
import type { Manifest } from "../store/manifest.js";
import { cacheLimitBytes, ChunkCache } from "./cache.js";
import { freeBytes } from "../store/space.js";
import { formatBytes } from "../text.js";
import { openRemote, type RemoteOptions } from "./client.js";
import { distinctChunks, type ChunkRef } from "./push.js";
import { noCounts, partBytes } from "./_fetch.js";
import { PullStream, createFiles } from "./stream.js";
import { formatRemote, keys, parseRemoteSnapshot } from "./url.js";

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
  /** Transfers at once and their parts, the chunk cache's size, the CRIU the fingerprint check compares. */
  config: Pick<Config, "remoteConcurrency" | "remotePartMb" | "chunkCacheGb" | "criu">;
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
  /** When (ms on the command's clock, as the restore's phases) the transfer began, the files CRIU reads were
   *  whole, and every file. */
  streamed?: { transferStartMs: number; criuFilesMs?: number; allFilesMs?: number };
}

/**
 * Pulls a snapshot from `s3://bucket/prefix/NAME` into the store. The manifest comes first and its fingerprint is
 * checked against this machine before any chunk moves; each chunk comes from the node's chunk cache or the bucket,
 * its sha256 checked, and is written at its places in a staging folder that becomes the snapshot in one rename.
 * A pull that fails or is killed leaves no snapshot; the chunks it had fetched stay in the cache for the next try.
 */
export async function pull(opts: PullOptions, events: Events): Promise<PullResult> {
  const begun = await beginPull(opts, events);
  if ("reused" in begun) return begun.reused;
  try {
    return await begun.finish();
  } catch (err) {
    await begun.stream.abort(); // no half snapshot; the cache keeps the checked chunks for the next try
    throw err;
  }
}

/** A pull under way: its chunks land in `stream`'s staging folder; `finish` moves it into the store. */
export interface PullUnderWay {
  stream: PullStream;
  finish(): Promise<PullResult>;
}

/**
 * Starts a pull: the manifest read and checked (the fingerprint before any chunk moves), the staging folder made
 * with every file at its size, and the chunks fetched in the order a restore needs them (`PullStream`). Where
 * `reuse` finds the same snapshot in the store already, nothing moves (`reused`). The caller ends it with
 * `finish` or `stream.abort()`.
 */
export async function beginPull(opts: PullOptions, events: Events): Promise<{ reused: PullResult } | PullUnderWay> {
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
    await parseManifest(text.toString("utf8"), formatRemote(src, src.name)),
    formatRemote(src, src.name),
  );
  const chunks = distinctChunks(manifest);
  const bytes = manifest.files.reduce((a, f) => a + f.size, 0);
  const local = await openSnapshot(name, home).catch(() => undefined);
  if (local && opts.reuse && sameFiles(local.manifest, manifest)) {
    const reused = { ...noCounts(), pulled: false, chunks: chunks.size, bytes, durationMs: events.t() - started };
    return { reused: { snapshot: name, remote: formatRemote(src, src.name), snapshotDir: local.dir, ...reused } };
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
      const criu = await locateCriu(opts.config.criu);
      const gpu = manifest.fingerprint.gpu ? await gpuIdentityFromProc() : undefined;
      await checkFingerprint(manifest, { force: false, criuVersion: criu.version, gpu }, events);
    });
  }
  const cache = await ChunkCache.open(home, cacheLimitBytes(opts.config.chunkCacheGb));
  const staging = await Staging.begin(name, home);
  let stream: PullStream;
  try {
    await checkSpace(staging.dir, home, bytes, cache, chunks);
    const handles = await createFiles(staging.dir, manifest.files);
    const ctx = { remote, src, cache, concurrency: opts.config.remoteConcurrency, partSize: partBytes(opts.config) };
    stream = new PullStream({ name, dir: staging.dir, manifest: { ...manifest, name } }, staging, handles, ctx, events);
  } catch (err) {
    await staging.abort();
    throw err;
  }
  return {
    stream,
    finish: async () => {
      const snapshotDir = await stream.finish();
      const result = { snapshot: name, remote: formatRemote(src, src.name), snapshotDir, pulled: true };
      const streamed = { ...stream.wholeAt };
      return { ...result, chunks: chunks.size, ...stream.counts, bytes, durationMs: events.t() - started, streamed };
    },
  };
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
