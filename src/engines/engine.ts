import type { Events } from "../events.js";
import type { StagedWeights, StageSource } from "./weights-stager.js";

/** The request whose answer must be the same after every restore as it was at capture. */
export interface CanaryRequest {
  method: "GET" | "POST";
  path: string;
  body?: string;
}

export interface CanaryAnswer {
  status: number;
  /** The answer reduced to what must not change (a vLLM completion without its id and timestamp). */
  text: string;
}

export interface EngineContext {
  /** e.g. http://127.0.0.1:8000 */
  baseUrl: string;
  events: Events;
  signal?: AbortSignal;
  /** False once the server's process tree has ended; waits stop early instead of timing out. */
  alive: () => boolean;
  /** Where the server's output goes, for error hints. */
  logPath: string;
  /** Capture: a server that cannot sleep may keep its weights and KV cache in the image (--allow-full-image). */
  allowFullImage?: boolean;
  /** Capture: whether the server's tree uses a GPU (maps libcuda). */
  usesGpu?: () => Promise<boolean>;
}

/**
 * An engine adapter: how stasis talks to one kind of server. `http` works for any server with a readiness URL;
 * `vllm` speaks vLLM's control API (sleep, wake, collective_rpc), which the reference engine speaks too.
 */
export interface Engine {
  readonly kind: "http" | "vllm";
  waitReady(ctx: EngineContext, readyPath: string, timeoutMs: number): Promise<void>;
  /** The canary request to use when the user named none. */
  defaultCanary(ctx: EngineContext): Promise<CanaryRequest>;
  warmup(ctx: EngineContext, canary: CanaryRequest, count: number): Promise<void>;
  canary(ctx: EngineContext, canary: CanaryRequest): Promise<CanaryAnswer>;
  /** The smallest real request (vLLM: a one-token completion of the canary's prompt), for time to first token. */
  firstToken(ctx: EngineContext, canary: CanaryRequest): Promise<void>;
  /** Just before the checkpoint: release what should not be in the image (vLLM: dump weights, sleep). */
  prepareCapture(ctx: EngineContext, snapshotDir: string): Promise<EngineState>;
  /**
   * A server restored from a snapshot put back to sleep as that snapshot holds it (for `stasis hibernate`): its files
   * stay the snapshot's, so nothing is dumped again; answers the state a later `resume` takes with the snapshot's
   * folder. Undefined (the method or its answer) where the engine cannot: hibernation then prepares as a capture
   * does, into a folder of its own.
   */
  resleep?(ctx: EngineContext, state: EngineState): Promise<EngineState | undefined>;
  /**
   * What of a snapshot can be staged beside its restore (vLLM adapter: its weights, filled into fresh GPU memory
   * while CRIU restores, engines/weights-stager.ts), or pinned ahead by `stasis serve --pin-weights`. Undefined
   * where the engine, or this snapshot of it, offers nothing of the kind.
   */
  stageSource?(state: EngineState, snapshotDir: string): StageSource | undefined;
  /** After CRIU (and CUDA) restore: bring the server back to serving (vLLM: wake, refill, reset caches);
   *  with `staged`, the weights are taken from the stager instead of refilled where it succeeded. */
  resume(ctx: EngineContext, state: EngineState, snapshotDir: string, staged?: StagedWeights): Promise<void>;
  /** Name and version of the engine, for the fingerprint. */
  identify(ctx: EngineContext): Promise<{ name: string; version: string } | undefined>;
}

/** Engine facts kept in the manifest; `files` are snapshot-relative paths the engine wrote (weights). */
export interface EngineState {
  [key: string]: unknown;
  files?: { path: string; role: "weights" | "cache" | "other" }[];
}
