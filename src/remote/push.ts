import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/config.js";
import { StasisError, fsError } from "../errors.js";
import type { Events } from "../events.js";
import { stasisHome } from "../home.js";
import { openSnapshot } from "../store/store.js";
import type { Manifest } from "../store/manifest.js";
import { sha256 } from "./cache.js";
import { openRemote, type RemoteOptions } from "./client.js";
import { eachLimit } from "./_pool.js";
import { uploadPartBytes } from "./_fetch.js";
import { INDEX_REFRESH_MS } from "./gc.js";
import { formatRemote, keys, parseRemoteStore } from "./url.js";

export interface PushOptions extends RemoteOptions {
  name: string;
  /** `s3://bucket/prefix` */
  to: string;
  home?: string;
  /** Transfers at once and the upload part size. */
  config: Pick<Config, "remoteConcurrency" | "remotePartMb">;
}

export interface PushResult {
  snapshot: string;
  remote: string;
  chunks: number;
  uploaded: number;
  skipped: number;
  bytesUploaded: number;
  bytesSkipped: number;
  durationMs: number;
}

/** One stored chunk and a place in the snapshot that holds it. */
export interface ChunkRef {
  digest: string;
  path: string;
  offset: number;
  length: number;
}

/** Every distinct chunk of a snapshot, with the places that hold it (zero-filled chunks repeat, and weights). */
export function distinctChunks(m: Manifest): Map<string, ChunkRef[]> {
  const out = new Map<string, ChunkRef[]>();
  for (const f of m.files) {
    f.chunks.forEach((digest, i) => {
      const offset = i * f.chunkSize;
      const ref = { digest, path: f.path, offset, length: Math.min(f.chunkSize, f.size - offset) };
      const refs = out.get(digest);
      if (refs) refs.push(ref);
      else out.set(digest, [ref]);
    });
  }
  return out;
}

/**
 * Pushes a snapshot of the store to `s3://bucket/prefix`: the snapshot's index, then each distinct chunk that the
 * bucket lacks (a HEAD says) under chunks/<sha256>, then, last, its manifest: a snapshot is in the bucket once its
 * manifest is, and a push run again after a failure sends only what is missing. Chunks in parts where they are
 * larger than STASIS_REMOTE_PART_MB where it is set (multipart uploads, the parts in parallel).
 */
export async function push(opts: PushOptions, events: Events): Promise<PushResult> {
  const started = events.t();
  const snap = await openSnapshot(opts.name, opts.home ?? stasisHome());
  const store = parseRemoteStore(opts.to);
  const remote = await openRemote(store, opts);
  const manifestText = await readFile(join(snap.dir, "manifest.json"));
  const already = await remote.getIfExists(keys.manifest(store, opts.name));
  if (already && !already.equals(manifestText)) {
    throw new StasisError(
      "E_SNAPSHOT_EXISTS",
      `${formatRemote(store, opts.name)} holds another snapshot of that name`,
      {
        hint: "push under another prefix, or rename the snapshot here (pull it under a new name)",
      },
    );
  }
  const chunks = distinctChunks(snap.manifest);
  const total = [...chunks.values()].reduce((a, refs) => a + refs[0]!.length, 0);
  const m = snap.manifest;
  const index = {
    schema: "stasis.remote-index/v1",
    name: opts.name,
    createdAt: m.createdAt,
    engine: m.engine.kind,
    bytes: m.files.reduce((a, f) => a + f.size, 0),
    distinctChunkBytes: total,
    files: m.files.map((f) => ({ path: f.path, size: f.size, chunkSize: f.chunkSize, chunks: f.chunks })),
  };
  // The index first, and again every few minutes: `stasis gc` counts the chunks of a push under way (no manifest
  // yet) as used while its index is recent.
  const indexBody = Buffer.from(JSON.stringify(index) + "\n");
  await remote.put(keys.index(store, opts.name), indexBody);
  const again = () => void remote.put(keys.index(store, opts.name), indexBody).catch(() => undefined);
  const refresh = setInterval(again, INDEX_REFRESH_MS);
  refresh.unref();
  const r = { uploaded: 0, skipped: 0, bytesUploaded: 0, bytesSkipped: 0 };
  const part = uploadPartBytes(opts.config);
  const send = async (ref: ChunkRef) => {
    const body = await readChunk(snap.dir, ref);
    const key = keys.chunk(store, ref.digest);
    if (part > 0 && body.length > part) await remote.putParts(key, body, part, Math.ceil(body.length / part));
    else await remote.put(key, body);
  };
  const found: ChunkRef[] = [];
  try {
    await events.phase(
      "push-chunks",
      () =>
        eachLimit([...chunks.values()], opts.config.remoteConcurrency, async (refs) => {
          const ref = refs[0]!;
          if ((await remote.head(keys.chunk(store, ref.digest))) === ref.length) {
            found.push(ref);
            r.skipped++;
            r.bytesSkipped += ref.length;
          } else {
            await send(ref);
            r.uploaded++;
            r.bytesUploaded += ref.length;
          }
          events.progress("push-chunks", r.bytesUploaded + r.bytesSkipped, total);
        }),
      () => ({ bytes: r.bytesUploaded, detail: { ...r } }),
    );
    await remote.put(keys.manifest(store, opts.name), manifestText);
    // A chunk found in the bucket may have been removed since by a `stasis gc` that read the references before this
    // push's index was there: now that the manifest protects them, each is looked at again and sent if it went.
    await eachLimit(found, opts.config.remoteConcurrency, async (ref) => {
      if ((await remote.head(keys.chunk(store, ref.digest))) !== ref.length) await send(ref);
    });
  } finally {
    clearInterval(refresh);
  }
  return {
    snapshot: opts.name,
    remote: formatRemote(store, opts.name),
    chunks: chunks.size,
    ...r,
    durationMs: events.t() - started,
  };
}

/** Reads one chunk of a snapshot's file and checks it against the manifest: a changed file is never pushed. */
async function readChunk(dir: string, ref: ChunkRef): Promise<Buffer> {
  const path = join(dir, ref.path);
  const buf = Buffer.alloc(ref.length);
  const fh = await open(path, "r").catch((err) => {
    throw fsError(err, path, "read snapshot file");
  });
  try {
    const { bytesRead } = await fh.read(buf, 0, ref.length, ref.offset);
    if (bytesRead !== ref.length || sha256(buf) !== ref.digest) {
      throw new StasisError(
        "E_DIGEST_MISMATCH",
        `${path} differs from its manifest at offset ${ref.offset}: not pushed`,
        {
          hint: "check the snapshot with `stasis inspect --verify NAME`; capture it again if it is damaged",
        },
      );
    }
    return buf;
  } finally {
    await fh.close();
  }
}
