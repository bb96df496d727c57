import { listSnapshots } from "../store/store.js";
import { removeDeadCaptures } from "../capture/leftovers.js";

export interface SnapshotRow {
  name: string;
  createdAt?: string;
  engine?: string;
  bytes?: number;
  processes?: number;
  cudaProcesses?: number;
  coldStartMs?: number;
  command?: string;
  error?: string;
}

/** Every snapshot in the store, damaged ones included (with their error). What dead captures left goes first. */
export async function ls(): Promise<SnapshotRow[]> {
  await removeDeadCaptures();
  return (await listSnapshots()).map((s) =>
    s.manifest
      ? {
          name: s.name,
          createdAt: s.manifest.createdAt,
          engine: s.manifest.engine.kind,
          bytes: s.manifest.files.reduce((a, f) => a + f.size, 0),
          processes: s.manifest.tree.processes,
          cudaProcesses: s.manifest.tree.cudaProcesses,
          coldStartMs: s.manifest.timings.coldStartMs,
          command: s.manifest.command.argv.join(" "),
        }
      : { name: s.name, error: s.error },
  );
}
