/**
 * A swap: the GPU handed from one serving instance to another snapshot in one operation (docs/parking.md). The
 * instance going off is hibernated (hibernate.ts); the snapshot coming on is restored, from its parked or hibernated
 * instance where the daemon holds one (take.ts). The two are not done one after the other: both start at once, and
 * the restore does beside the engine going to sleep what fits on the GPU beside it (a take's resume, an ordinary
 * restore's CRIU, and the CUDA restore where the GPU has the room), the rest (its weights, its engine's wake) once the
 * sleep has freed the GPU's memory (`gpuFree`), beside the rest of the hibernate (the CUDA checkpoint of what the
 * sleep leaves, the tree stopped), which the one coming on never waits for.
 *
 * Failures, by when they happen:
 * - before the sleep ends (its engine refusing to sleep): the instance goes on serving, and the restore under way is
 *   undone (a take's parked or hibernated instance ended with it);
 * - the restore fails: the swap fails with its error; the instance going off is hibernated all the same (a restore of
 *   its snapshot wakes it), or ended where its hibernate failed too;
 * - the hibernate fails after the sleep: the instance is ended (its memory may be the other's by then), and the swap
 *   answers with the other serving and says why in `off.ended`.
 */
import { StasisError, asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { findInstance } from "../instances/instances.js";
import { openSnapshot } from "../store/store.js";
import type { Parked } from "./park.js";
import type { RestoreResult } from "./restore.js";

/** The two sides of a swap: the daemon passes its pool's hibernate and its restore (a take where it can). */
export interface SwapSides {
  /** Takes the instance off the GPU, calling `handOver` once its engine sleeps (hibernate.ts). */
  off(handOver: () => void): Promise<Parked>;
  /** Brings the other snapshot on: serving, its canary matched; what needs the GPU's memory waits for `gpuFree`. */
  on(gpuFree: Promise<void>): Promise<RestoreResult>;
}

export interface SwapResult<R extends RestoreResult = RestoreResult> {
  /** The restore of the snapshot coming on; its own readyMs is from its own start. */
  restored: R;
  off: {
    id: string;
    /** The hibernated instance the daemon now holds, or none where the hibernate failed after the sleep. */
    hibernated?: Parked;
    /** Why the instance was ended instead of hibernated. */
    ended?: string;
  };
  /** From the swap's start: the engine going off asleep (the GPU's memory free), the other serving. */
  handOverMs: number;
  readyMs: number;
}

/** Runs `sides` as a swap; `events` gives its clock (the restore's own events go where `sides.on` sends them). */
export async function swap<R extends RestoreResult>(
  sides: { off: SwapSides["off"]; on: (gpuFree: Promise<void>) => Promise<R> },
  events: Events,
  offId: string,
): Promise<SwapResult<R>> {
  const started = events.t();
  let handOverMs: number | undefined;
  let handedOver!: () => void;
  let never!: (err: unknown) => void;
  const gpuFree = new Promise<void>((resolve, reject) => ((handedOver = resolve), (never = reject)));
  gpuFree.catch(() => undefined); // the restore's to see
  const off = sides.off(() => {
    handOverMs = Math.round((events.t() - started) * 10) / 10;
    handedOver();
  });
  // A hibernate that ends before its engine sleeps frees nothing: the restore waiting for it fails (after the sleep,
  // the promise is settled and this does nothing).
  const nothingFreed = new StasisError(
    "E_INTERNAL",
    `the hibernate of instance ${offId} ended without its engine going to sleep`,
  );
  off.then(() => never(nothingFreed), never);
  const on = sides.on(gpuFree).then((r) => ({ r, at: Math.round((events.t() - started) * 10) / 10 }));
  const [o, n] = await Promise.allSettled([off, on]);
  // Before the sleep: the instance still serves, and the restore was undone; the hibernate's error is the swap's.
  if (handOverMs === undefined) throw o.status === "rejected" ? o.reason : nothingFreed;
  if (n.status === "rejected") {
    const e = asStasisError(n.reason);
    const where =
      o.status === "fulfilled"
        ? `instance ${offId} is hibernated: a restore of "${o.value.snapshot}" wakes it`
        : `instance ${offId} was ended: its hibernate failed too (${asStasisError(o.reason).message})`;
    throw new StasisError(e.code, `the swap's restore failed: ${e.message}; ${where}`, {
      hint: e.hint,
      details: e.details,
    });
  }
  const ended = o.status === "rejected" ? asStasisError(o.reason).message : undefined;
  if (ended) events.log(`instance ${offId} was ended, not hibernated: ${ended}`, "warn");
  return {
    restored: n.value.r,
    off: { id: offId, ...(o.status === "fulfilled" ? { hibernated: o.value } : { ended }) },
    handOverMs,
    readyMs: n.value.at,
  };
}

/**
 * What must hold before a swap touches anything: instance `offId` serves, snapshot `name` is in the store, and it is
 * another snapshot than the instance's (its address is the instance's own). The instance's full id.
 */
export async function checkSwap(offId: string, name: string): Promise<string> {
  const inst = await findInstance(offId);
  if (inst.status !== "serving") {
    throw new StasisError("E_USAGE", `instance ${inst.id} is ${inst.status}; a swap takes a serving instance off`, {
      hint: "`stasis ps` shows each instance's state; `stasis restore` serves a snapshot without a swap",
    });
  }
  if (inst.snapshot === name) {
    throw new StasisError(
      "E_USAGE",
      `instance ${inst.id} serves "${name}" already; a swap hands its GPU to another snapshot`,
      {
        hint: `\`stasis hibernate ${inst.id}\` takes it off the GPU; a restore of "${name}" wakes it`,
      },
    );
  }
  await openSnapshot(name);
  return inst.id;
}
