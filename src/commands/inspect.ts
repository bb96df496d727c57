import type { Events } from "../events.js";
import { openSnapshot } from "../store/store.js";
import { verifyFiles } from "../pagecache/verify.js";
import { checkSnapshotFiles } from "../store/check-files.js";
import { recordVerified, stampFiles } from "../store/verified.js";
import type { Manifest } from "../store/manifest.js";

export interface InspectResult {
  snapshot: string;
  snapshotDir: string;
  manifest: Manifest;
  /** Set with verify: every file's digest was checked and matched. */
  verified?: { bytes: number };
}

/** A snapshot's manifest; with `verify`, every file is read and checked against its digests. */
export async function inspect(opts: { name: string; verify: boolean }, events: Events): Promise<InspectResult> {
  const snap = await openSnapshot(opts.name);
  const out: InspectResult = { snapshot: snap.name, snapshotDir: snap.dir, manifest: snap.manifest };
  if (opts.verify) {
    // Where each file leads and its size first: a file reached through a symlink is refused, never read.
    await checkSnapshotFiles(snap.dir, snap.manifest.files);
    const stamps = await stampFiles(snap.dir, snap.manifest.files);
    out.verified = await events.phase(
      "verify",
      () => verifyFiles(snap.dir, snap.manifest.files, { events, phase: "verify" }),
      (v) => ({ bytes: v.bytes }),
    );
    await recordVerified(snap.dir, stamps);
  }
  return out;
}
