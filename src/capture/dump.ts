import { readdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import type { Criu } from "../criu/locate.js";
import { criuDump, type DumpResult } from "../criu/dump.js";
import { findLinkRemaps, keepFiles, keepLinkRemaps, sharedMemoryFiles, unlinkedFiles } from "../criu/kept-files.js";
import { lockTableOfLog, removeLockTableQuietly } from "../criu/network-lock.js";
import type { CudaDriver } from "../cuda/driver.js";
import { processTree, type ProcInfo } from "../proc/tree.js";
import { tcpOf } from "../proc/net.js";
import { followAppends, type DigestInput } from "../store/digest.js";
import type { Manifest } from "../store/manifest.js";
import type { Deferred, Pipeline } from "../pipeline/pipeline.js";
import { refuseUndumpable } from "./preflight.js";
import { closeAhead, gpuCheckpoint, type GpuCapture } from "./gpu.js";
import { describeTimers, periodicTimers } from "./timers.js";
import { digestBeside, settleFirst, type Digested } from "./digests.js";
import type { CaptureRun } from "./run.js";
import type { CaptureOptions } from "./capture.js";

/** The server's tree as it was dumped, and what the dump left in the staging folder. */
export interface Dumped {
  tree: ProcInfo[];
  listeners: string[];
  /** Local addresses other than loopback the tree's TCP sockets are bound to (net.ts tcpOf). */
  addresses: string[];
  timers: Manifest["periodicTimers"];
  gpu: GpuCapture | undefined;
  dump: DumpResult;
  networkLockTable: string | undefined;
  linkRemaps: Manifest["linkRemaps"];
  shmFiles: Manifest["shmFiles"];
  /** The tree's shared-memory files (their paths), kept by --leave-running's instance. */
  shared: string[];
  /** The digests of CRIU's images, link_remap and shared-memory files, running. */
  imageFiles: Promise<Digested>;
  /** The dump's network-lock table on the cleanup stack: removed should the capture fail, the snapshot's once
   *  committed. */
  lockTable: Deferred;
}

/**
 * The CUDA worker, started while the server is warmed up when its tree maps libcuda already (gpu.ts); ended as the
 * capture ends unless the checkpoint took it.
 */
export function cudaAhead(p: Pipeline, ahead: Promise<CudaDriver | undefined>): Deferred {
  return p.defer("the CUDA worker started ahead", () => closeAhead(ahead));
}

/**
 * Steps cuda checkpoint -> "criu-dump", its pages digested as CRIU writes them ("digest-pages") -> the files CRIU
 * needs by path kept -> "digest-images", in the background. Before them: the tree is one CRIU can dump
 * (preflight.ts), its listening ports and periodic timers noted. With --leave-running the original then gets its GPU
 * state back and resumes ("engine-resume", by the caller); otherwise the dump ended it.
 */
export async function dumpServer(
  p: Pipeline,
  run: CaptureRun,
  opts: CaptureOptions,
  criu: Criu,
  root: number,
  ahead: { driver: Promise<CudaDriver | undefined>; held: Deferred },
): Promise<Dumped> {
  const { staging, inst, dumpLog } = run;
  const tree = await processTree(root);
  const pids = tree.map((t) => t.pid);
  await refuseUndumpable(pids);
  const { listeners, addresses } = await tcpOf(pids);
  if (addresses.length > 0) p.events.log(boundAddressesNote(addresses), "warn");
  const timers = await periodicTimers(pids);
  if (timers.length > 0) p.events.log(describeTimers(timers));
  ahead.held.keep(); // gpuCheckpoint owns the worker now, whatever happens to it
  const gpu = await gpuCheckpoint(pids, p.events, ahead.driver);
  if (gpu) p.defer("the CUDA checkpoint's worker", () => gpu.close());
  const unlinked = await unlinkedFiles(pids);
  const shared = await sharedMemoryFiles(pids);
  p.throwIfInterrupted();

  // CRIU's pages images are digested as CRIU appends to them (it writes each front to back, never going back),
  // so little is left to hash after the dump. Why: docs/decisions/0009-capture-dump.md.
  const concurrency = Math.min(4, Math.ceil(availableParallelism() / 4));
  const follow = followAppends(staging.dir, "images", (n) => /^pages-\d+\.img$/.test(n), { concurrency });
  const followed = p.step(
    "digest-pages",
    () => follow.result,
    (r) => ({ bytes: r.bytes }),
  );
  settleFirst(p, "digest-pages", followed);
  // Invariant: a dump that committed nothing leaves no network-lock table (CRIU removes its own when it fails, not
  // when it is killed or when the capture fails after it).
  const nftLock = opts.config.criuNetworkLock === "nftables";
  const lockTable = p.defer("the dump's network-lock table", async () => {
    const table = nftLock ? await lockTableOfLog(dumpLog) : undefined;
    const err = await removeLockTableQuietly(table, opts.config.criu);
    if (err) p.events.log(`could not remove the network-lock table ${table} of this dump: ${err.message}`, "warn");
  });
  const dump = await p
    .step("criu-dump", () =>
      criuDump(criu, root, join(staging.dir, "images"), {
        leaveRunning: opts.leaveRunning,
        networkLock: opts.config.criuNetworkLock,
        logDir: inst.dir,
        holdLinkRemaps: { dirs: [...unlinked.keys()], tag: run.id },
        signal: p.signal,
      }),
    )
    .finally(() => follow.stop());
  // Left running, the tree's connections were unlocked by CRIU; otherwise the snapshot owns the lock's table.
  const networkLockTable = opts.leaveRunning || !nftLock ? undefined : await lockTableOfLog(dump.logPath);
  const { known } = await followed;
  const linkRemaps = await keepLinkRemaps(await findLinkRemaps(unlinked, run.id), staging.dir);
  // The tree is gone unless it was left running: then its shared-memory files are its own leftovers.
  const shmFiles = await keepFiles(shared, staging.dir, "shm", !opts.leaveRunning);
  // CRIU's images are complete: digested while the engine resumes (or the tree ends) and the caches are packed;
  // without compile caches to pack (any engine but vLLM), nothing runs beside it: all cores.
  const inputs = await imageInputs(staging.dir, linkRemaps, shmFiles);
  const imageFiles = digestBeside(p, staging.dir, inputs, "digest-images", opts.engine !== "vllm", known);
  return {
    tree,
    listeners,
    addresses,
    timers,
    gpu,
    dump,
    networkLockTable,
    linkRemaps,
    shmFiles,
    shared,
    imageFiles,
    lockTable,
  };
}

/** CRIU's images, and the link_remap and shared-memory files kept beside them: what "digest-images" reads. */
async function imageInputs(
  dir: string,
  linkRemaps: Manifest["linkRemaps"],
  shmFiles: Manifest["shmFiles"],
): Promise<DigestInput[]> {
  return [
    ...(await filesUnder(dir, "images")).map((path) => ({ path, role: "image" as const })),
    ...linkRemaps.map((r) => ({ path: r.file, role: "link-remap" as const })),
    ...shmFiles.map((r) => ({ path: r.file, role: "shm" as const })),
  ];
}

async function filesUnder(root: string, sub: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(root, p));
    }
  };
  await walk(join(root, sub));
  return out.sort();
}

/** Why a snapshot whose sockets are bound to this host's own addresses restores only where those exist. */
export function boundAddressesNote(addresses: string[]): string {
  return (
    `the server's TCP sockets are bound to ${addresses.join(", ")} (not loopback): a restore on the host's network ` +
    "needs that address on the restoring machine; a namespaced restore (--publish, --netns) adds it to the " +
    "namespace's loopback. A server bound to 127.0.0.1 inside (vLLM: VLLM_HOST_IP=127.0.0.1) restores anywhere"
  );
}
