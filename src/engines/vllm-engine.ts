import { copyFile, link, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import type { PhaseResult } from "../events.js";
import { stasisHome } from "../home.js";
import { httpOk, httpRequest } from "./http-client.js";
import { httpEngine, pollReady, sendCanary } from "./http-engine.js";
import { sha256 } from "./canary.js";
import type { CanaryAnswer, CanaryRequest, Engine, EngineContext, EngineState } from "./engine.js";
import type { StagedWeights } from "./weights-stager.js";
import { StageInfo } from "../contracts/engine-state.js";
import { exists } from "../files.js";
import { isSnapshotRelative } from "../store/confine.js";
import { PRIVATE_DIR } from "../store/private.js";
import { checkRanks, type RankResult } from "./vllm-ranks.js";
import { parallelSetup, refuseUnsupported } from "./vllm-parallel.js";

/** The weights file of each rank inside a snapshot; `{rank}` is filled in by the worker extension. */
const WEIGHTS_TEMPLATE = "weights/rank{rank}.stasisw";

/**
 * Calls a stasis worker-extension method in every worker through POST /collective_rpc and checks the answer
 * (`checkRanks`): a worker that answers `ok: false` fails the call with its own message and hint, and so does a
 * missing worker: `ranks` where the caller knows how many there are.
 */
async function rpc(ctx: EngineContext, method: string, args: string[] = [], ranks?: number): Promise<RankResult[]> {
  const res = await httpOk(ctx.baseUrl + "/collective_rpc", {
    body: JSON.stringify({ method, args, kwargs: {} }),
    timeoutMs: 600_000,
    signal: ctx.signal,
  });
  let body: { results?: unknown };
  try {
    body = JSON.parse(res.body) as { results?: unknown };
  } catch {
    throw new StasisError("E_ENGINE", `${method}: /collective_rpc answered ${JSON.stringify(res.body.slice(0, 80))}`, {
      hint: "is it vLLM with VLLM_SERVER_DEV_MODE=1?",
    });
  }
  return checkRanks(method, body?.results, ranks);
}

async function post(ctx: EngineContext, path: string): Promise<void> {
  await httpOk(ctx.baseUrl + path, { method: "POST", body: "", timeoutMs: 600_000, signal: ctx.signal });
}

/**
 * The weights layout, or why there is none to dump: vLLM on the CPU (no sleep mode there: the worker extension
 * answers `vllm_unavailable`), a server started without --enable-sleep-mode or without stasis's worker
 * extension, or without VLLM_SERVER_DEV_MODE=1 (no /collective_rpc). Then everything stays in the image.
 */
async function weightsLayout(ctx: EngineContext): Promise<{ layout: RankResult[] } | { reason: string }> {
  const sleepProbe = await httpRequest(ctx.baseUrl + "/is_sleeping", { timeoutMs: 10_000, signal: ctx.signal }).catch(
    () => undefined,
  );
  if (!sleepProbe || sleepProbe.status !== 200)
    return { reason: "the server has no /is_sleeping (start it with VLLM_SERVER_DEV_MODE=1 and --enable-sleep-mode)" };
  try {
    return { layout: await rpc(ctx, "stasis_weights_layout") };
  } catch (err) {
    return { reason: `its worker extension cannot dump the weights pool (${(err as Error).message})` };
  }
}

async function isSleeping(ctx: EngineContext): Promise<boolean> {
  const res = await httpOk(ctx.baseUrl + "/is_sleeping", { timeoutMs: 10_000, signal: ctx.signal });
  return Boolean((JSON.parse(res.body) as { is_sleeping?: boolean }).is_sleeping);
}

/**
 * A worker call whose failure only costs snapshot size (a worker extension without the method, from an older
 * stasis_engine, or a failing worker): run as phase `phase`, and where it fails logged as a warning, `unread`
 * followed by the error, and answered undefined, so the capture goes on. A cancelled capture still stops.
 */
async function bestEffort(
  ctx: EngineContext,
  phase: string,
  method: string,
  ranks: number | undefined,
  result: (results: RankResult[]) => PhaseResult,
  unread: string,
): Promise<RankResult[] | undefined> {
  try {
    return await ctx.events.phase(phase, () => rpc(ctx, method, [], ranks), result);
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    ctx.events.log(`${unread}: ${(err as Error).message}`, "warn");
    return undefined;
  }
}

/**
 * Asks every worker to give its freed host memory back (glibc's free lists, torch's pinned cache) once asleep:
 * what the heap freed is otherwise dumped as dirty pages and written back on every restore. vLLM's API server
 * process is not trimmed, only the workers.
 */
export async function trimHostMemory(ctx: EngineContext, ranks?: number): Promise<void> {
  await bestEffort(
    ctx,
    "host-trim",
    "stasis_trim_host_memory",
    ranks,
    (results) => ({ detail: trimDetail(results) }),
    "freed host memory not trimmed before the checkpoint (it stays in the image)",
  );
}

/**
 * Sleep at level 2, checked, then (`trim`) the workers' freed host memory given back: the state a checkpoint copies.
 * A hibernate does not trim: nothing is dumped (its process stays, stopped), and the trim's garbage collection would
 * hold up a swap's hand-over of the GPU.
 */
async function sleepForCheckpoint(ctx: EngineContext, ranks: number, trim = true): Promise<void> {
  await ctx.events.phase("sleep", () => post(ctx, "/sleep?level=2"));
  if (!(await isSleeping(ctx)))
    throw new StasisError("E_ENGINE", "the server did not report sleeping after /sleep?level=2");
  if (trim) await trimHostMemory(ctx, ranks);
}

/**
 * What each worker holds on the GPU once asleep (what the CUDA checkpoint copies), logged in the capture's events,
 * and the sleep pool's tags other than the weights and KV cache that the sleep released: a restore must wake them
 * too (the CUDA graphs' memory, docs/decisions/0013-vllm-graph-pool.md).
 */
async function sleepingExtraTags(ctx: EngineContext, ranks: number): Promise<string[]> {
  const results = await bestEffort(
    ctx,
    "gpu-memory",
    "stasis_gpu_memory",
    ranks,
    (r) => ({ detail: { ranks: r } }),
    "the workers' GPU memory was not read",
  );
  const tags = new Set<string>();
  for (const r of results ?? []) {
    const byTag = (r.sleep_pool_tags ?? {}) as Record<string, { asleep?: number }>;
    for (const [tag, t] of Object.entries(byTag)) if (!KNOWN_TAGS.has(tag) && (t.asleep ?? 0) > 0) tags.add(tag);
    ctx.events.log(
      `rank ${r.rank ?? "?"} on the GPU asleep: ${gib(r.device_used)} used (torch ${gib(r.torch_on_gpu ?? r.torch_reserved)}, ` +
        `outside torch ${gib(r.outside_torch)}; CUDA graphs ${r.graphs === "sleep" ? "in the sleep pool" : "on the GPU"})`,
    );
  }
  return [...tags].sort();
}

const KNOWN_TAGS = new Set(["weights", "kv_cache", "stasis-adopted-weights"]);

function extraWakeTags(state: Record<string, unknown>): string[] {
  const tags = state.wakeTags;
  if (tags === undefined) return [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(t))) {
    throw new StasisError(
      "E_MANIFEST_INVALID",
      `the snapshot's engine wakeTags ${JSON.stringify(tags)} are not a list of tag names`,
      {
        hint: "the manifest was altered; capture the snapshot again",
      },
    );
  }
  return tags as string[];
}

/**
 * The server's parallel setup, asked of every worker (`stasis_parallel`): logged where there are several workers or
 * engines, and refused where a capture cannot take it (`refuseUnsupported`), before anything is dumped or put to
 * sleep. `sleeps`: the capture sleeps at level 2 with weights dumped per rank. `bestEffort`: a server that cannot
 * answer (no worker extension, or the reference engine) is let through; a multi-worker vLLM must answer.
 */
async function checkParallel(
  ctx: EngineContext,
  opts: { ranks?: number; sleeps: boolean; bestEffort: boolean },
): Promise<void> {
  let results: RankResult[];
  try {
    results = await rpc(ctx, "stasis_parallel", [], opts.ranks);
  } catch (err) {
    if (!opts.bestEffort || ctx.signal?.aborted) throw err;
    return;
  }
  const setup = parallelSetup(results);
  if (setup.ranks > 1 || setup.dataParallel > 1) {
    const live = Object.entries(setup.live).map(([k, r]) => `${k} in rank ${r.join(",")}`);
    ctx.events.log(
      `${setup.ranks} workers (tensor parallel ${setup.tensorParallel}, pipeline parallel ${setup.pipelineParallel}` +
        `${setup.dataParallel > 1 ? `, data parallel ${setup.dataParallel}` : ""}); ` +
        `all-reduce paths live: ${live.join("; ") || "none"}`,
    );
  }
  refuseUnsupported(setup, opts.sleeps);
}

/** How long every worker may take over each NCCL suspend or resume (a barrier across the workers). */
const COMM_TIMEOUT_S = 60;

/**
 * A multi-worker server's NCCL communicators suspended after its sleep, before the CUDA checkpoint (vLLM's sleep
 * leaves them as they are: docs/tensor-parallel.md); true where any was. Where the NCCL vLLM loaded lacks the call,
 * the checkpoint meets the communicators as they are, with a warning; any other failure fails the capture.
 */
async function suspendComms(ctx: EngineContext, ranks: number): Promise<boolean> {
  try {
    const results = await ctx.events.phase(
      "comm-suspend",
      () => rpc(ctx, "stasis_comm_suspend", [String(COMM_TIMEOUT_S)], ranks),
      (r) => ({ detail: { ranks: r } }),
    );
    return results.some((r) => typeof r.communicators === "number" && r.communicators > 0);
  } catch (err) {
    const code = err instanceof StasisError ? (err.details?.error as { code?: string } | undefined)?.code : undefined;
    if (code !== "nccl_suspend_unsupported") throw err;
    ctx.events.log(`NCCL communicators left as they are for the checkpoint: ${(err as Error).message}`, "warn");
    return false;
  }
}

/** The snapshot's worker count (the manifest's schema holds it to a positive integer where present). */
function stateRanks(state: Record<string, unknown>): number | undefined {
  return typeof state.ranks === "number" ? state.ranks : undefined;
}

function gib(v: unknown): string {
  return typeof v === "number" ? `${(v / 2 ** 30).toFixed(2)} GiB` : "?";
}

/** Per rank: the trim's ms and private dirty bytes before and after; `freedBytes` summed over ranks. */
function trimDetail(results: RankResult[]): Record<string, unknown> {
  const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
  const ranks = results.map((r) => ({
    rank: r.rank,
    ms: num(r.ms),
    trimmed: r.trimmed === true,
    privateDirtyBeforeBytes: num(r.private_dirty_before_bytes),
    privateDirtyAfterBytes: num(r.private_dirty_after_bytes),
    // The CUDA context's stack set back (STASIS_VLLM_CONTEXT_STACK): what it freed on the GPU, or why it was not.
    ...(contextTrimmed(r.context) ? { context: r.context } : {}),
  }));
  const freedBytes = ranks.reduce(
    (a, r) => a + Math.max(0, (r.privateDirtyBeforeBytes ?? 0) - (r.privateDirtyAfterBytes ?? 0)),
    0,
  );
  return { freedBytes, ranks };
}

function contextTrimmed(context: unknown): boolean {
  const c = context as { applied?: unknown; error?: unknown } | undefined;
  return typeof c === "object" && c !== null && (c.applied === true || c.error !== undefined);
}

/**
 * A completion reduced to what a greedy decode must reproduce exactly: the choices (text, token ids,
 * logprobs, finish reason) and the usage, without the request id and timestamps that differ on every call.
 */
export function canonicalCompletion(body: string): string {
  let parsed: { choices?: unknown[]; usage?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return body;
  }
  if (!Array.isArray(parsed.choices)) return body;
  return stableJson({ choices: parsed.choices, usage: parsed.usage ?? null });
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * The vLLM control API (and the reference engine, which speaks it). With sleep mode, capture dumps the
 * weights once per model (kept in $STASIS_HOME/weights and hard-linked into each snapshot), then sleeps at
 * level 2 so neither weights nor KV cache are in the image. Restore wakes the weights' memory at the same
 * addresses, refills it in place from the dump, wakes the KV cache and resets the prefix cache: the order
 * matters (a stale prefix cache or unfilled weights give wrong answers silently, the canary catches it).
 * Without sleep mode (vLLM on the CPU) everything stays in the image and resume has nothing to do.
 */
export const vllmEngine: Engine = {
  kind: "vllm",
  async waitReady(ctx, readyPath, timeoutMs) {
    await pollReady(ctx, readyPath, timeoutMs);
    // /health answers before the model is served on some versions; /v1/models lists it once it is.
    await pollReady(ctx, "/v1/models", Math.max(1_000, timeoutMs));
  },
  async defaultCanary(ctx): Promise<CanaryRequest> {
    const models = JSON.parse((await httpOk(ctx.baseUrl + "/v1/models", { signal: ctx.signal })).body) as {
      data?: { id: string }[];
    };
    const model = models.data?.[0]?.id;
    if (!model)
      throw new StasisError("E_ENGINE", "the server lists no model at /v1/models", {
        hint: "is it a vLLM-compatible server?",
      });
    // Four greedy tokens with their logprobs: every weight takes part in each token and the logprob floats show
    // any difference; each further token would be one more decode step on every restore's critical path.
    return {
      method: "POST",
      path: "/v1/completions",
      body: JSON.stringify({ model, prompt: "The stasis canary says:", max_tokens: 4, temperature: 0, logprobs: 1 }),
    };
  },
  warmup: httpEngine.warmup,
  async canary(ctx, canary): Promise<CanaryAnswer> {
    const res = await sendCanary(ctx, canary);
    return { status: res.status, text: res.status === 200 ? canonicalCompletion(res.body) : res.body };
  },
  async firstToken(ctx, canary) {
    const body = { ...(JSON.parse(canary.body ?? "{}") as Record<string, unknown>), max_tokens: 1, logprobs: null };
    await httpOk(ctx.baseUrl + canary.path, { body: JSON.stringify(body), timeoutMs: 120_000, signal: ctx.signal });
  },
  async prepareCapture(ctx, snapshotDir): Promise<EngineState> {
    const probe = await weightsLayout(ctx);
    if ("reason" in probe) {
      // A GPU server's image would hold its weights and KV cache (tens of GB, read back on every restore):
      // refused unless asked for, since a missing flag is the likely cause.
      if (!ctx.allowFullImage && (await ctx.usesGpu?.())) {
        throw new StasisError("E_ENGINE", `the GPU server cannot sleep at level 2: ${probe.reason}`, {
          hint:
            "start vLLM with --enable-sleep-mode and --worker-extension-cls " +
            "stasis_engine.vllm.StasisWorkerExtension, with VLLM_SERVER_DEV_MODE=1 (--env); or pass " +
            "--allow-full-image to capture its weights and KV cache in the image",
          details: { reason: probe.reason },
        });
      }
      // Never call /sleep here: on the CPU vLLM answers 200, frees nothing, and pauses the engine.
      await checkParallel(ctx, { sleeps: false, bestEffort: true });
      ctx.events.log(`no sleep level 2: ${probe.reason}; weights and KV cache stay in the image`, "warn");
      return { sleepLevel: 0, reason: probe.reason };
    }
    const layout = probe.layout;
    const ranks = layout.length;
    await checkParallel(ctx, { ranks, sleeps: true, bestEffort: ranks === 1 });
    await mkdir(join(snapshotDir, "weights"), { recursive: true, mode: PRIVATE_DIR });
    const files: EngineState["files"] = [];
    for (let rank = 0; rank < ranks; rank++)
      files.push({ path: WEIGHTS_TEMPLATE.replace("{rank}", String(rank)), role: "weights" });
    // An engine that says which dumps it can share (`reuse_key`: same tensors from the same model files) gets
    // one dump per key in $STASIS_HOME/weights, hard-linked into each snapshot; others dump every time.
    const keys = layout.map((r) => r.reuse_key);
    const key = keys.every((k) => typeof k === "string" && k !== "") ? sha256(keys.join("/")).slice(0, 24) : undefined;
    if (!key) {
      await ctx.events.phase(
        "weights-dump",
        () => rpc(ctx, "stasis_dump_weights", [join(snapshotDir, WEIGHTS_TEMPLATE)], ranks),
        (r) => ({ bytes: sumBytes(r) }),
      );
    } else {
      const cache = join(stasisHome(), "weights", key);
      if (!(await exists(join(cache, "complete")))) {
        // Dump into a temporary folder, then rename: a dump cut short is never mistaken for a complete one.
        const tmp = `${cache}.tmp-${process.pid}`;
        await rm(tmp, { recursive: true, force: true });
        await mkdir(join(tmp, "weights"), { recursive: true, mode: PRIVATE_DIR }); // $STASIS_HOME/weights too
        await ctx.events.phase(
          "weights-dump",
          () => rpc(ctx, "stasis_dump_weights", [join(tmp, WEIGHTS_TEMPLATE)], ranks),
          (r) => ({ bytes: sumBytes(r) }),
        );
        await mkdir(join(tmp, "complete"), { mode: PRIVATE_DIR });
        await rm(cache, { recursive: true, force: true });
        await rename(tmp, cache);
      } else {
        ctx.events.log(`reusing the weights dumped earlier for this model (${cache})`);
      }
      // Hard links: the snapshot holds the weights without a copy, and removing either keeps the other.
      for (const f of files) await linkOrCopy(join(cache, f.path), join(snapshotDir, f.path));
    }
    await sleepForCheckpoint(ctx, ranks);
    const wakeTags = await sleepingExtraTags(ctx, ranks);
    const commsSuspended = ranks > 1 && (await suspendComms(ctx, ranks));
    const stage = stageInfo(layout);
    return {
      sleepLevel: 2,
      ranks,
      weights: WEIGHTS_TEMPLATE,
      ...(key ? { reuseKey: key } : {}),
      ...(stage ? { stage } : {}),
      ...(wakeTags.length ? { wakeTags } : {}),
      ...(commsSuspended ? { commsSuspended: true } : {}),
      files,
    };
  },
  async resleep(ctx, state) {
    // Only a snapshot taken at sleep level 2 has its weights in files beside it; without them, hibernate as a capture.
    if (state.sleepLevel !== 2) return undefined;
    const ranks = stateRanks(state) ?? 1;
    await sleepForCheckpoint(ctx, ranks, false);
    const commsSuspended = ranks > 1 && (await suspendComms(ctx, ranks));
    const { commsSuspended: _was, ...rest } = state;
    return { ...rest, ...(commsSuspended ? { commsSuspended: true } : {}) };
  },
  stageSource(state, snapshotDir) {
    const info = StageInfo.safeParse(state.stage);
    if (state.sleepLevel !== 2 || !info.success) return undefined;
    return { info: info.data, weightsFile: join(snapshotDir, weightsTemplate(state).replace("{rank}", "0")) };
  },
  async resume(ctx, state, snapshotDir, staged) {
    if (state.sleepLevel !== 2) return;
    const extraTags = extraWakeTags(state);
    const ranks = stateRanks(state);
    // Before anything else talks to the workers: the communicators come back as the capture left them.
    if (state.commsSuspended === true) {
      await ctx.events.phase(
        "comm-resume",
        () => rpc(ctx, "stasis_comm_resume", [String(COMM_TIMEOUT_S)], ranks),
        (r) => ({ detail: { ranks: r } }),
      );
    }
    if (!(staged && (await adoptStaged(ctx, staged, ranks)))) {
      await ctx.events.phase("wake-weights", () => post(ctx, "/wake_up?tags=weights"));
      await ctx.events.phase(
        "refill-weights",
        () => rpc(ctx, "stasis_load_weights", [join(snapshotDir, weightsTemplate(state))], ranks),
        (r) => ({ bytes: sumBytes(r), detail: { ranks: r } }),
      );
    }
    // Other pools the sleep released (the CUDA graphs' memory with STASIS_VLLM_GRAPHS=sleep) are mapped by the workers
    // themselves: vLLM's /wake_up wakes nothing at all when asked for a tag it did not put to sleep itself.
    if (extraTags.length)
      await ctx.events.phase("wake-graphs", () => rpc(ctx, "stasis_wake_tags", [extraTags.join(",")], ranks));
    await ctx.events.phase("wake-kv-cache", () => post(ctx, "/wake_up?tags=kv_cache"));
    await ctx.events.phase("reset-prefix-cache", () => post(ctx, "/reset_prefix_cache"));
  },
  async identify(ctx) {
    const res = await httpRequest(ctx.baseUrl + "/version", { timeoutMs: 10_000, signal: ctx.signal }).catch(
      () => undefined,
    );
    if (!res || res.status !== 200) return { name: "vllm-api", version: "unknown" };
    try {
      const v = JSON.parse(res.body) as { version?: string; engine?: string };
      return { name: v.engine ?? "vllm", version: v.version ?? "unknown" };
    } catch {
      return { name: "vllm-api", version: "unknown" };
    }
  },
};

/**
 * The stager's layout facts from a one-rank engine that offers them: its interpreter and import path (`stage`),
 * and either the tensors at offsets of one arena (the reference engine: `stage.arena_size`, `tensors`) or the
 * weights pool's extents (vLLM: `extents`, addresses in hex), which the stager fills one allocation each.
 */
function stageInfo(layout: RankResult[]): StageInfo | undefined {
  if (layout.length !== 1) return undefined;
  const r = layout[0]!;
  const stage = r.stage as { python?: unknown; path?: unknown; arena_size?: unknown } | null | undefined;
  if (!stage) return undefined;
  const base = { python: stage.python, path: stage.path };
  if (Array.isArray(r.tensors)) return parsed({ ...base, arenaSize: stage.arena_size, tensors: r.tensors });
  if (!Array.isArray(r.extents)) return undefined;
  const extents = (r.extents as { address?: unknown; size?: unknown }[]).map((e) => ({
    address: typeof e.address === "string" ? Number.parseInt(e.address, 16) : e.address,
    size: e.size,
  }));
  // An address past 2^53 would not survive as a JS number: then no staging, the restore refills in place.
  if (!extents.every((e) => typeof e.address === "number" && Number.isSafeInteger(e.address))) return undefined;
  const arenaSize = extents.reduce((a, e) => a + (typeof e.size === "number" ? e.size : 0), 0);
  return parsed({ ...base, arenaSize, extents });
}

function parsed(candidate: unknown): StageInfo | undefined {
  const out = StageInfo.safeParse(candidate);
  return out.success ? out.data : undefined;
}

/**
 * Waits for the staged weights and has the engine map them (wake + refill in one, no copy). False where there
 * is nothing to take (the stager failed or was refused memory) or the engine would not take it: the caller then
 * wakes and refills, so staging never fails a restore that refilling would have served.
 */
async function adoptStaged(ctx: EngineContext, staged: StagedWeights, ranks?: number): Promise<boolean> {
  const got = await staged.ready();
  if (!("socket" in got)) {
    ctx.events.log(`weights not staged (${got.reason}); refilling them in place`, "warn");
    return false;
  }
  let adopted: RankResult[];
  try {
    adopted = await ctx.events.phase(
      "adopt-weights",
      () => rpc(ctx, "stasis_adopt_weights", [got.socket], ranks),
      (r) => ({ bytes: sumBytes(r), detail: { ranks: r } }),
    );
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    ctx.events.log(
      `the engine did not take the staged weights (${(err as Error).message}); refilling them in place`,
      "warn",
    );
    return false;
  } finally {
    staged.stop();
  }
  // vLLM's workers map the staged allocations themselves; vLLM's own wake then marks the weights awake and
  // restores the model's buffers (it maps nothing: the adopted allocations are hidden from it until settled).
  if (adopted.some((r) => r.settle === true)) {
    await ctx.events.phase("wake-weights", () => post(ctx, "/wake_up?tags=weights"));
    await rpc(ctx, "stasis_adopt_settle", [], ranks);
  }
  return true;
}

/** Bytes moved, summed over ranks: each rank reports `stats.bytes` (or `bytes`). */
function sumBytes(results: RankResult[]): number {
  return results.reduce((a, r) => {
    const stats = r.stats as { bytes?: unknown } | undefined;
    const bytes = typeof stats?.bytes === "number" ? stats.bytes : typeof r.bytes === "number" ? r.bytes : 0;
    return a + bytes;
  }, 0);
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    // Another filesystem (STASIS_HOME split over mounts): a copy does the same job.
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    await copyFile(from, to);
  }
}

/** The manifest's weights path (per rank), which must lie inside the snapshot like every path it names. */
function weightsTemplate(state: Record<string, unknown>): string {
  const t = String(state.weights ?? WEIGHTS_TEMPLATE);
  if (!isSnapshotRelative(t)) {
    const message = `the snapshot's weights path ${JSON.stringify(t)} is not a relative path inside it`;
    throw new StasisError("E_MANIFEST_INVALID", message, {
      hint: "the manifest was altered; capture the snapshot again",
    });
  }
  return t;
}
