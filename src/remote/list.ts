import { parseManifest } from "../store/manifest.js";
import { openRemote, type RemoteOptions } from "./client.js";
import { eachLimit } from "./_pool.js";
import { formatRemote, keys, parseRemoteStore } from "./url.js";

export interface RemoteListing {
  name: string;
  url: string;
  createdAt?: string;
  engine?: "http" | "vllm";
  bytes?: number;
  processes?: number;
  cudaProcesses?: number;
  /** Set where the snapshot cannot be used: a push that never finished (no manifest), or a damaged manifest. */
  error?: string;
}

/** The snapshots in `s3://bucket/prefix`, by name. */
export async function listRemote(url: string, opts: RemoteOptions = {}): Promise<RemoteListing[]> {
  const store = parseRemoteStore(url);
  const remote = await openRemote(store, opts);
  const names = (await remote.folders(keys.snapshots(store))).sort();
  const out: RemoteListing[] = names.map((name) => ({ name, url: formatRemote(store, name) }));
  await eachLimit(out, 8, async (entry) => {
    const text = await remote.getIfExists(keys.manifest(store, entry.name));
    if (!text) {
      entry.error = "incomplete: no manifest (a push that did not finish)";
      return;
    }
    try {
      const m = await parseManifest(text.toString("utf8"), entry.url);
      Object.assign(entry, {
        createdAt: m.createdAt,
        engine: m.engine.kind,
        bytes: m.files.reduce((a, f) => a + f.size, 0),
        processes: m.tree.processes,
        cudaProcesses: m.tree.cudaProcesses,
      });
    } catch (err) {
      entry.error = (err as Error).message;
    }
  });
  return out;
}
