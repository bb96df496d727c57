import type { Config } from "../config/config.js";
import type { Events } from "../events.js";
import { recordInstance, type Instance } from "../instances/instances.js";
import { processTree } from "../proc/tree.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { loadWorkingSet, recordWorkingSet, saveWorkingSet } from "./working-set.js";
import type { Background } from "./background.js";
import type { Claimed } from "./claimed.js";
import type { RestoredTree } from "./tree.js";

/**
 * The last step: the instance is recorded as serving and handed to the caller: its record, its process tree and its
 * shared-memory files leave the restore's cleanup stack (the supervisor is released as the restore ends). Before
 * that, the first restore of a snapshot records its working set (advisory: it only saves later restores page faults).
 */
export async function handOver(
  p: Pipeline,
  claimed: Claimed,
  tree: RestoredTree,
  bg: Background,
  config: Pick<Config, "workingSet">,
): Promise<Instance> {
  const { snap, claim } = claimed;
  const m = snap.manifest;
  await bg.workingSet;
  if (config.workingSet && !(await loadWorkingSet(snap.dir))) await recordTreeWorkingSet(snap.dir, tree.pid, p.events);
  const instance = await recordInstance({
    id: claim.id,
    snapshot: claim.snapshot,
    origin: "restore",
    pid: tree.pid,
    nsInit: tree.nsInit,
    url: tree.url ?? m.server.url,
    createdAt: new Date().toISOString(),
    dir: claim.dir,
    stdout: claim.stdout,
    stderr: claim.stderr,
    listeners: m.listeners,
    ...(tree.shmFiles.length > 0 ? { placedFiles: tree.shmFiles } : {}),
    ...(tree.placement ? { placement: tree.placement } : {}),
  });
  claimed.record.keep();
  for (const held of tree.held) held.keep();
  return instance;
}

/**
 * After the first restore's canary: records which pages of which files the restored tree has touched (its
 * libraries), for later restores from a cold page cache to read ahead. A failure is a warning.
 */
async function recordTreeWorkingSet(snapshotDir: string, root: number, events: Events): Promise<void> {
  try {
    await events.phase(
      "record-working-set",
      async () => {
        const ws = await recordWorkingSet((await processTree(root)).map((p) => p.pid));
        await saveWorkingSet(snapshotDir, ws);
        return ws;
      },
      (ws) => ({ bytes: ws.bytes, detail: { files: ws.files.length } }),
    );
  } catch (err) {
    events.log(`could not record the restore's working set: ${(err as Error).message}`, "warn");
  }
}
