import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import { parseManifest } from "../store/manifest.js";
import { openRemote, type Remote, type RemoteOptions } from "./client.js";
import { eachLimit } from "./_pool.js";
import { formatRemote, keys, parseRemoteStore, type RemoteStore } from "./url.js";

export interface GcOptions extends RemoteOptions {
  /** `s3://bucket/prefix` */
  store: string;
  /** Remove; without it, only say what would be removed. */
  yes: boolean;
  /** Chunks (and unfinished pushes) younger than this are kept, whatever references them. */
  graceMs: number;
  /** Injected by tests: the clock, and a client in place of the store's. */
  now?: () => number;
  remote?: Remote;
}

export interface GcResult {
  remote: string;
  dryRun: boolean;
  snapshots: number;
  /** Snapshot folders without a manifest, older than the grace period: pushes that never finished. */
  abandoned: string[];
  chunks: number;
  referenced: number;
  /** Chunks no snapshot references, kept because they are younger than the grace period (a push under way). */
  young: number;
  /** Chunks removed (with --yes) or that would be (dry run). */
  removed: number;
  bytesRemoved: number;
}

/** The chunks a store's snapshots use, from their manifests, and from the index of every push under way. */
export interface References {
  digests: Set<string>;
  snapshots: number;
  /** Unfinished pushes older than the grace period: their index keys. */
  abandoned: string[];
}

/** The default grace period: a day. A push writes its index first, so one under way is seen at any age. */
export const DEFAULT_GRACE_HOURS = 24;

/**
 * An unfinished push is taken for one that died only once its index is older than the grace period and this: a
 * push under way writes its index again every INDEX_REFRESH_MS, so even `--grace-hours 0` never takes it for dead.
 */
export const UNFINISHED_MIN_MS = 3600_000;
export const INDEX_REFRESH_MS = 600_000;

/**
 * Removes from `s3://bucket/prefix` the chunks no snapshot there references (a dry run unless `yes`). Safe beside
 * a push: a push writes its snapshot's index before any chunk (and again every 10 minutes), and the index of a push
 * not finished counts as a reference until it is older than the grace period and an hour (then it is a push that
 * died: its index goes too); chunks
 * younger than the grace period stay whatever references them; the references are read again before each batch
 * of removals; and a push checks, once its manifest is written, that the chunks it found in the bucket are still
 * there (sending any that went). A damaged manifest stops it before anything is removed.
 */
export async function gcRemote(opts: GcOptions, events: Events): Promise<GcResult> {
  const store = parseRemoteStore(opts.store);
  const remote = opts.remote ?? (await openRemote(store, opts));
  const now = opts.now ?? Date.now;
  const dead = () => now() - Math.max(opts.graceMs, UNFINISHED_MIN_MS);
  const refs = await events.phase("gc-references", () => references(remote, store, dead()));
  const listed = await events.phase("gc-list", () => remote.list(keys.chunk(store, "")));
  const cutoff = now() - opts.graceMs;
  const chunks = listed.filter((o) => /^[0-9a-f]{64}$/.test(o.key.slice(o.key.lastIndexOf("/") + 1)));
  const unreferenced = chunks.filter((o) => !refs.digests.has(digestOf(o.key)));
  const doomed = unreferenced.filter((o) => o.lastModified.getTime() < cutoff);
  const result: GcResult = {
    remote: formatRemote(store),
    dryRun: !opts.yes,
    snapshots: refs.snapshots,
    abandoned: refs.abandoned.map((k) => k.slice(keys.snapshots(store).length).replace(/\/index\.json$/, "")),
    chunks: chunks.length,
    referenced: chunks.length - unreferenced.length,
    young: unreferenced.length - doomed.length,
    removed: 0,
    bytesRemoved: 0,
  };
  if (!opts.yes) {
    result.removed = doomed.length;
    result.bytesRemoved = doomed.reduce((a, o) => a + o.size, 0);
    return result;
  }
  await events.phase(
    "gc-remove",
    async () => {
      for (const key of refs.abandoned) await remote.delete(key);
      for (let at = 0; at < doomed.length; at += BATCH) {
        // A push that wrote its index or manifest since: what it uses stays.
        const again = await references(remote, store, dead());
        const batch = doomed.slice(at, at + BATCH).filter((o) => !again.digests.has(digestOf(o.key)));
        await eachLimit(batch, 8, async (o) => {
          await remote.delete(o.key);
          result.removed++;
          result.bytesRemoved += o.size;
        });
      }
    },
    () => ({ bytes: result.bytesRemoved }),
  );
  return result;
}

const BATCH = 64;

const digestOf = (key: string) => key.slice(key.lastIndexOf("/") + 1);

/**
 * Every chunk a snapshot of the store references: its manifest's, or, for a folder without a manifest (a push under
 * way), its index's while the index is younger than `abandonedBefore` (ms since the epoch).
 */
export async function references(remote: Remote, store: RemoteStore, abandonedBefore: number): Promise<References> {
  const objects = await remote.list(keys.snapshots(store));
  const byFolder = new Map<string, { manifest?: string; index?: { key: string; at: number } }>();
  for (const o of objects) {
    const m = /^(.*\/)(manifest|index)\.json$/.exec(o.key);
    if (!m) continue;
    const entry = byFolder.get(m[1]!) ?? {};
    if (m[2] === "manifest") entry.manifest = o.key;
    else entry.index = { key: o.key, at: o.lastModified.getTime() };
    byFolder.set(m[1]!, entry);
  }
  const out: References = { digests: new Set(), snapshots: 0, abandoned: [] };
  await eachLimit([...byFolder.values()], 8, async (entry) => {
    if (entry.manifest) {
      out.snapshots++;
      for (const d of await chunksOf(remote, entry.manifest, "manifest")) out.digests.add(d);
    } else if (entry.index && entry.index.at >= abandonedBefore) {
      for (const d of await chunksOf(remote, entry.index.key, "index")) out.digests.add(d);
    } else if (entry.index) out.abandoned.push(entry.index.key);
  });
  return out;
}

/** The chunk digests a manifest or index lists; a damaged one stops the collection (nothing is removed). */
async function chunksOf(remote: Remote, key: string, kind: "manifest" | "index"): Promise<string[]> {
  const text = await remote.getIfExists(key);
  if (!text) return []; // removed since it was listed
  const where = `s3://.../${key}`;
  try {
    const files =
      kind === "manifest"
        ? (await parseManifest(text.toString("utf8"), where)).files
        : (JSON.parse(text.toString("utf8")) as { files: { chunks: string[] }[] }).files;
    return files.flatMap((f) => f.chunks);
  } catch (err) {
    throw new StasisError("E_MANIFEST_INVALID", `${key} cannot be read: nothing was removed`, {
      hint: "fix or remove that snapshot's folder in the bucket, then run gc again",
      cause: err,
    });
  }
}
