/**
 * `stasis hibernate ID`: a serving instance taken off the GPU and parked in place: its engine put to sleep (the
 * adapter's prepare, as before a capture), its GPU state checkpointed (the CUDA checkpoint API; the GPU's memory is
 * free once it is), its tree stopped. A take (take.ts) wakes it: resume + CUDA restore + engine wake + canary. With
 * a take of another snapshot's parked instance, that is a swap of the GPU from one model to another.
 */
import { join } from "node:path";
import { mkdir, rm } from "node:fs/promises";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import { engineFor } from "../engines/engines.js";
import type { EngineContext } from "../engines/engine.js";
import {
  findInstance,
  recordInstance,
  selfAsOwner,
  stopInstance,
  withClaimsLock,
  type InstanceStatus,
} from "../instances/instances.js";
import { supervise } from "../instances/supervisor.js";
import { closeAhead, cudaWorkerAhead, gpuCheckpoint } from "../capture/gpu.js";
import { runPipeline } from "../pipeline/pipeline.js";
import { continueTree, stopTree } from "../proc/freeze.js";
import { isRunning, processTree } from "../proc/tree.js";
import { PRIVATE_DIR } from "../store/private.js";
import { openSnapshot } from "../store/store.js";
import { manifestDigest, type Parked } from "./park.js";

/** The instances being hibernated in this process now (the daemon: hibernates and swaps are its alone). */
const underWay = new Set<string>();

export interface HibernateOptions {
  /**
   * A swap (swap.ts): called once the engine sleeps, its GPU memory free for another server. From then on a failure
   * ends this instance instead of giving it its GPU state and engine back: that memory may be the other's by then.
   */
  handOver?: () => void;
}

/**
 * Hibernates serving instance `id` (or a unique prefix of it). Refused (E_USAGE) for an instance that is not serving.
 * Its steps each push their undo (src/pipeline/): a failure part-way gives the instance back its GPU state and engine
 * and leaves it serving (with `handOver`, a failure after the sleep ends it).
 */
export async function hibernate(id: string, events: Events, opts: HibernateOptions = {}): Promise<Parked> {
  const started = events.t();
  return runPipeline(events, {}, async (p) => {
    const inst = await findInstance(id);
    if (inst.status !== "serving") {
      throw new StasisError("E_USAGE", `instance ${inst.id} is ${inst.status}; only a serving instance can hibernate`, {
        hint: "`stasis ps` shows each instance's state",
      });
    }
    // One at a time: its record says serving until the end, and a second would checkpoint what the first takes off.
    if (underWay.has(inst.id)) {
      throw new StasisError("E_USAGE", `instance ${inst.id} is being hibernated already (a hibernate or a swap)`, {
        hint: "wait for it to end; `stasis ps` then shows it parked",
      });
    }
    underWay.add(inst.id);
    p.defer("the hibernate under way", () => underWay.delete(inst.id)); // given back on success too: never kept
    const snap = await openSnapshot(inst.snapshot);
    const digest = await manifestDigest(snap.dir);
    const engine = await engineFor(snap.manifest.engine.kind);
    const ctx: EngineContext = { baseUrl: inst.url, events, alive: () => true, logPath: inst.stderr };
    // An engine prepared as for a capture keeps its sleep state in the instance's folder (an earlier one's removed).
    const dir = join(inst.dir, "hibernate");
    await rm(dir, { recursive: true, force: true });
    const pids = (await processTree(inst.pid)).map((x) => x.pid);
    // The CUDA worker starts beside the sleep (where the tree has CUDA processes), not after it.
    const ahead = cudaWorkerAhead(pids);
    const worker = p.defer("the CUDA worker started ahead", () => closeAhead(ahead));
    // Each step's undo gives the instance back what the step took: a hibernate that fails leaves it serving.
    // Put back to sleep as its snapshot holds it where the engine can (the weights stay the snapshot's: nothing is
    // dumped, and a take stages them from the snapshot, pinned by the daemon); else prepared as for a capture.
    const { engineState, engineDir } = await p.step("engine-sleep", async () => {
      const again = await engine.resleep?.(ctx, snap.manifest.engine.state);
      if (again) return { engineState: again, engineDir: snap.dir };
      await mkdir(dir, { mode: PRIVATE_DIR });
      return { engineState: await engine.prepareCapture(ctx, dir), engineDir: dir };
    });
    const handOver = opts.handOver;
    // Handed over, the one undo is the end of the instance: nothing of it is given back.
    const awake = handOver
      ? p.defer("the instance (its GPU handed over)", () => stopInstance(inst, 0).then(() => undefined))
      : p.defer("the engine's sleep", () => engine.resume(ctx, engineState, engineDir));
    handOver?.();
    const gpu = await gpuCheckpoint(pids, events, ahead);
    worker.keep(); // the checkpoint took the worker, or closed it
    const onGpu =
      gpu &&
      p.defer(handOver ? "the CUDA worker" : "the GPU state", async () => {
        if (!handOver) await gpu.resume(events);
        gpu.close();
      });
    await p.step("stop-tree", async () => {
      const stopped = await stopTree(inst.pid);
      // A tree that ended meanwhile stops without complaint: it must not be recorded as parked.
      if (!(await isRunning(inst.pid))) {
        throw new StasisError("E_SERVER_EXITED", `the server of instance ${inst.id} exited while it hibernated`, {
          hint: `\`stasis logs ${inst.id}\` shows its last words`,
        });
      }
      return stopped;
    });
    const running = handOver ? undefined : p.defer("the stopped tree", () => continueTree(inst.pid));
    // From here the daemon holds it: should the daemon die, its supervisor ends the stopped tree.
    const supervisor = supervise(inst.id, "");
    const supervised = p.defer("the hibernate's supervisor", () => supervisor.release());
    const record = await withClaimsLock(async () =>
      recordInstance({
        ...withoutStatus(inst),
        state: "parked",
        owner: await selfAsOwner(),
        parked: { manifestDigest: digest, hibernated: true, parkedAt: new Date().toISOString() },
      }),
    );
    for (const held of [awake, onGpu, running, supervised]) held?.keep();
    const hibernated = { engineState, engineDir, ...(gpu ? { gpu } : {}) };
    return { record, snapshot: inst.snapshot, supervisor, hibernated, parkMs: events.t() - started };
  });
}

function withoutStatus(inst: InstanceStatus): Omit<InstanceStatus, "running" | "status" | "startTime"> {
  const { running: _r, status: _s, startTime: _t, ...rest } = inst;
  return rest;
}
