import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Events, recordTimeline, type StasisEvent } from "../events.js";
import type { EngineContext } from "./engine.js";
import { trimHostMemory, vllmEngine } from "./vllm-engine.js";
import type { StagedWeights } from "./weights-stager.js";

/** A server whose /collective_rpc answers `answer` (status, body) and records the methods called. */
async function fakeServer(
  answer: (method: string) => [number, unknown],
): Promise<{ url: string; methods: string[]; close: () => Promise<void> }> {
  const methods: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const method =
        req.url === "/collective_rpc" ? (JSON.parse(text) as { method: string }).method : `${req.method} ${req.url}`;
      methods.push(method);
      const [status, body] = answer(method);
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  // Invariant: the listening socket is closed whatever the test asserts, so node:test can exit.
  return {
    url: `http://127.0.0.1:${port}`,
    methods,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function context(baseUrl: string): { ctx: EngineContext; logs: StasisEvent[] } {
  const events = new Events();
  const logs: StasisEvent[] = [];
  events.on((e) => e.type === "log" && logs.push(e));
  return { ctx: { baseUrl, events, alive: () => true, logPath: "/dev/null" }, logs };
}

test("the host trim's numbers per worker land in the host-trim phase", async () => {
  const server = await fakeServer(() => [
    200,
    {
      results: [
        {
          ok: true,
          rank: 0,
          ms: 12.5,
          trimmed: true,
          private_dirty_before_bytes: 5_000_000_000,
          private_dirty_after_bytes: 1_000_000_000,
          context: { applied: true, stack_before: 4096, stack_after: 1024, freed_bytes: 830_472_192 },
        },
        {
          ok: true,
          rank: 1,
          ms: 10,
          trimmed: true,
          private_dirty_before_bytes: 3_000,
          private_dirty_after_bytes: 1_000,
          context: { applied: false },
        },
      ],
    },
  ]);
  try {
    const { ctx, logs } = context(server.url);
    const timeline = recordTimeline(ctx.events);
    await trimHostMemory(ctx);
    assert.deepEqual(server.methods, ["stasis_trim_host_memory"]);
    const [phase] = timeline.phases;
    assert.equal(phase?.name, "host-trim");
    assert.equal(phase?.ok, true);
    assert.equal(phase?.detail?.freedBytes, 4_000_002_000);
    const ranks = phase?.detail?.ranks as { rank: number; context?: { freed_bytes: number } }[];
    assert.deepEqual(
      ranks.map((r) => r.rank),
      [0, 1],
    );
    // The context's stack set back is said where it was (or failed), and left out where nothing was asked.
    assert.equal(ranks[0]?.context?.freed_bytes, 830_472_192);
    assert.equal(ranks[1]?.context, undefined);
    assert.deepEqual(logs, []);
  } finally {
    await server.close();
  }
});

test("a worker extension without the trim method warns and does not fail the capture", async () => {
  const server = await fakeServer(() => [500, { error: { message: "AttributeError: no stasis_trim_host_memory" } }]);
  try {
    const { ctx, logs } = context(server.url);
    await trimHostMemory(ctx);
    assert.equal(logs.length, 1);
    assert.match((logs[0] as { level: string; message: string }).level, /warn/);
    assert.match((logs[0] as { message: string }).message, /not trimmed/);
  } finally {
    await server.close();
  }
});

test("a worker answering ok: false warns and does not fail the capture", async () => {
  const server = await fakeServer(() => [
    200,
    { results: [{ ok: false, rank: 0, error: { code: "boom", message: "no libc" } }] },
  ]);
  try {
    const { ctx, logs } = context(server.url);
    await trimHostMemory(ctx);
    assert.equal(logs.length, 1);
    assert.match((logs[0] as { message: string }).message, /rank 0: no libc/);
  } finally {
    await server.close();
  }
});

/** A stager stand-in: ready with a socket, or with the reason it has none; records whether it was stopped. */
function staged(outcome: { socket: string } | { reason: string }): StagedWeights & { stopped: boolean } {
  const s = { stopped: false, ready: async () => outcome, go: () => undefined, stop: () => void (s.stopped = true) };
  return s;
}

const LEVEL2 = { sleepLevel: 2, weights: "weights/rank{rank}.stasisw" };

test("resume takes staged weights instead of waking and refilling them", async () => {
  const server = await fakeServer((m) => [
    200,
    m === "stasis_adopt_weights" ? { results: [{ ok: true, rank: 0, bytes: 6_000 }] } : {},
  ]);
  try {
    const { ctx, logs } = context(server.url);
    const timeline = recordTimeline(ctx.events);
    const stager = staged({ socket: "/run/x.sock" });
    await vllmEngine.resume(ctx, LEVEL2, "/snap", stager);
    assert.deepEqual(server.methods, [
      "stasis_adopt_weights",
      "POST /wake_up?tags=kv_cache",
      "POST /reset_prefix_cache",
    ]);
    assert.equal(timeline.phases.find((p) => p.name === "adopt-weights")?.bytes, 6_000);
    assert.equal(stager.stopped, true);
    assert.deepEqual(logs, []);
  } finally {
    await server.close();
  }
});

test("resume refills in place, with a warning, when the stager has nothing to give", async () => {
  const server = await fakeServer(() => [200, { results: [{ ok: true, rank: 0 }] }]);
  try {
    const { ctx, logs } = context(server.url);
    await vllmEngine.resume(ctx, LEVEL2, "/snap", staged({ reason: "gpu_memory: 1.0 GiB free" }));
    assert.deepEqual(server.methods, [
      "POST /wake_up?tags=weights",
      "stasis_load_weights",
      "POST /wake_up?tags=kv_cache",
      "POST /reset_prefix_cache",
    ]);
    assert.match((logs[0] as { message: string }).message, /not staged \(gpu_memory: 1.0 GiB free\); refilling/);
  } finally {
    await server.close();
  }
});

test("resume refills in place when the engine refuses the staged weights", async () => {
  const server = await fakeServer((m) =>
    m === "stasis_adopt_weights"
      ? [200, { results: [{ ok: false, rank: 0, error: { code: "weights_layout", message: "arena has 8192 bytes" } }] }]
      : [200, { results: [{ ok: true }] }],
  );
  try {
    const { ctx, logs } = context(server.url);
    const stager = staged({ socket: "/run/x.sock" });
    await vllmEngine.resume(ctx, LEVEL2, "/snap", stager);
    assert.deepEqual(server.methods.slice(0, 3), [
      "stasis_adopt_weights",
      "POST /wake_up?tags=weights",
      "stasis_load_weights",
    ]);
    assert.match((logs[0] as { message: string }).message, /did not take the staged weights .*8192 bytes/);
    assert.equal(stager.stopped, true);
  } finally {
    await server.close();
  }
});

test("resume with weights vLLM adopted wakes them through vLLM, then settles them, before the KV cache", async () => {
  const server = await fakeServer((m) => [
    200,
    m.startsWith("stasis_")
      ? { results: [{ ok: true, rank: 0, bytes: 6_000, settle: m === "stasis_adopt_weights" }] }
      : {},
  ]);
  try {
    const { ctx, logs } = context(server.url);
    const timeline = recordTimeline(ctx.events);
    await vllmEngine.resume(ctx, LEVEL2, "/snap", staged({ socket: "/run/x.sock" }));
    assert.deepEqual(server.methods, [
      "stasis_adopt_weights",
      "POST /wake_up?tags=weights",
      "stasis_adopt_settle",
      "POST /wake_up?tags=kv_cache",
      "POST /reset_prefix_cache",
    ]);
    assert.deepEqual(
      timeline.phases.map((p) => p.name),
      ["adopt-weights", "wake-weights", "wake-kv-cache", "reset-prefix-cache"],
    );
    assert.deepEqual(logs, []);
  } finally {
    await server.close();
  }
});

test("a GPU server that cannot sleep at level 2 is refused, unless --allow-full-image keeps the warning", async () => {
  // vLLM started without VLLM_SERVER_DEV_MODE=1: no /is_sleeping, so no weights dump and no sleep.
  const server = await fakeServer(() => [404, { detail: "Not Found" }]);
  const prepare = (extra: Partial<EngineContext>) => {
    const c = context(server.url);
    return { logs: c.logs, state: vllmEngine.prepareCapture({ ...c.ctx, ...extra }, "/nonexistent") };
  };
  try {
    await assert.rejects(
      prepare({ usesGpu: async () => true }).state,
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, "E_ENGINE");
        assert.match(err.message, /^the GPU server cannot sleep at level 2: the server has no \/is_sleeping/);
        assert.match(err.hint ?? "", /--enable-sleep-mode.*VLLM_SERVER_DEV_MODE=1.*--allow-full-image/);
        return true;
      },
    );
    assert.deepEqual(server.methods, ["GET /is_sleeping"], "refused before any /sleep");
    const allowed = prepare({ usesGpu: async () => true, allowFullImage: true });
    assert.equal((await allowed.state).sleepLevel, 0);
    const warning = String((allowed.logs[0] as { message: string }).message);
    assert.match(warning, /^no sleep level 2: .*weights and KV cache stay in the image/);
    assert.equal((await prepare({ usesGpu: async () => false }).state).sleepLevel, 0, "a CPU server: the warning");
  } finally {
    await server.close();
  }
});

test("a vLLM layout with its stager facts is staged as extents, one allocation each", () => {
  const source = vllmEngine.stageSource?.(
    {
      sleepLevel: 2,
      weights: "weights/rank{rank}.stasisw",
      stage: {
        python: "/usr/bin/python3",
        path: "/opt/stasis/python",
        arenaSize: 6 << 20,
        extents: [
          { address: 0x7f0000000000, size: 4 << 20 },
          { address: 0x7f0000400000, size: 2 << 20 },
        ],
      },
    },
    "/snap",
  );
  assert.equal(source?.weightsFile, "/snap/weights/rank0.stasisw");
  assert.deepEqual(
    source?.info.extents?.map((e) => e.size),
    [4 << 20, 2 << 20],
  );
  assert.deepEqual(source?.info.tensors, []);
});

test("a snapshot whose sleep released the CUDA graphs' memory has the workers map it before the KV cache wakes", async () => {
  const server = await fakeServer((m) => [
    200,
    m === "stasis_adopt_weights"
      ? { results: [{ ok: true, rank: 0, bytes: 6_000 }] }
      : m === "stasis_wake_tags"
        ? { results: [{ ok: true, rank: 0, woken: ["default"] }] }
        : {},
  ]);
  try {
    const { ctx } = context(server.url);
    await vllmEngine.resume(ctx, { ...LEVEL2, wakeTags: ["default"] }, "/snap", staged({ socket: "/run/x.sock" }));
    assert.deepEqual(server.methods, [
      "stasis_adopt_weights",
      "stasis_wake_tags",
      "POST /wake_up?tags=kv_cache",
      "POST /reset_prefix_cache",
    ]);
  } finally {
    await server.close();
  }
});

test("a manifest whose wake tags are not tag names is refused before anything is woken", async () => {
  const server = await fakeServer(() => [200, {}]);
  try {
    const { ctx } = context(server.url);
    await assert.rejects(
      vllmEngine.resume(ctx, { ...LEVEL2, wakeTags: ["kv_cache&x=1"] }, "/snap", staged({ reason: "none" })),
      /wakeTags/,
    );
    assert.deepEqual(server.methods, []);
  } finally {
    await server.close();
  }
});

test("a worker's error code maps to the product's by the contract's table (weights problems: E_WEIGHTS_INVALID)", async () => {
  for (const [engineCode, expected] of [
    ["weights_checksum", "E_WEIGHTS_INVALID"],
    ["gpu_memory", "E_ENGINE"],
  ]) {
    const error = { code: engineCode, message: "extent 3 differs", hint: "dump again" };
    const server = await fakeServer((m) => [
      200,
      m === "stasis_load_weights" ? { results: [{ ok: false, rank: 0, error }] } : {},
    ]);
    try {
      await assert.rejects(
        vllmEngine.resume(context(server.url).ctx, LEVEL2, "/snap"),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.code, expected);
          assert.match(err.message, /^stasis_load_weights failed in rank 0: extent 3 differs$/);
          assert.equal(err.hint, "dump again");
          return true;
        },
      );
    } finally {
      await server.close();
    }
  }
});

/** A TP=2 server's answers: every stasis method answered by both ranks, `stasis_parallel` with these paths live;
 *  `error` makes every rank fail that method with that engine error. */
function tp2(
  allReduce: Record<string, boolean>,
  only?: (method: string) => number[],
  error?: { method: string; code: string; message: string },
) {
  let asleep = false;
  return (m: string): [number, unknown] => {
    if (m === "GET /is_sleeping") return [200, { is_sleeping: asleep }];
    if (m === "POST /sleep?level=2") asleep = true;
    if (!m.startsWith("stasis_")) return [200, {}];
    const ranks = only?.(m) ?? [0, 1];
    if (error?.method === m) {
      return [200, { results: ranks.map((rank) => ({ ok: false, rank, world_size: 2, error })) }];
    }
    const extra = (rank: number) =>
      m === "stasis_parallel"
        ? { tensor_parallel_size: 2, pipeline_parallel_size: 1, all_reduce: { pynccl: true, ...allReduce } }
        : m === "stasis_weights_layout"
          ? { extents: [{ address: `0x${(rank + 7).toString(16)}0000000`, size: 4096 }], stage: null }
          : m === "stasis_comm_suspend"
            ? { communicators: 1, groups: ["tp:0"] }
            : {};
    return [200, { results: ranks.map((rank) => ({ ok: true, rank, world_size: 2, ...extra(rank) })) }];
  };
}

test("a TP=2 server with custom all-reduce is refused before its weights are dumped or it sleeps", async () => {
  const server = await fakeServer(tp2({ custom: true }));
  try {
    const { ctx } = context(server.url);
    await assert.rejects(
      vllmEngine.prepareCapture({ ...ctx, usesGpu: async () => true }, "/nonexistent"),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === "E_ENGINE" && /custom all-reduce/.test(e.message) && /--disable-custom-all-reduce/.test(e.hint!),
    );
    assert.deepEqual(server.methods, ["GET /is_sleeping", "stasis_weights_layout", "stasis_parallel"]);
  } finally {
    await server.close();
  }
});

test("a TP=2 restore refills each rank from its own file, and fails where a rank does not answer", async () => {
  const state = { ...LEVEL2, ranks: 2 };
  const server = await fakeServer(tp2({}));
  try {
    const { ctx } = context(server.url);
    const timeline = recordTimeline(ctx.events);
    await vllmEngine.resume(ctx, state, "/snap");
    assert.deepEqual(server.methods, [
      "POST /wake_up?tags=weights",
      "stasis_load_weights",
      "POST /wake_up?tags=kv_cache",
      "POST /reset_prefix_cache",
    ]);
    const refill = timeline.phases.find((p) => p.name === "refill-weights");
    assert.deepEqual(
      (refill?.detail?.ranks as { rank: number }[]).map((r) => r.rank),
      [0, 1],
    );
  } finally {
    await server.close();
  }
  const half = await fakeServer(tp2({}, (m) => (m === "stasis_load_weights" ? [0] : [0, 1])));
  try {
    await assert.rejects(
      vllmEngine.resume(context(half.url).ctx, state, "/snap"),
      (e: Error & { code?: string }) => e.code === "E_ENGINE" && /no answer from rank 1/.test(e.message),
    );
    assert.ok(!half.methods.includes("POST /wake_up?tags=kv_cache"), "nothing more is woken after the failed refill");
  } finally {
    await half.close();
  }
});

test("a TP=2 capture suspends the workers' NCCL communicators after the sleep; its restore resumes them first", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stasis-tp2-"));
  const server = await fakeServer(tp2({}));
  try {
    const { ctx, logs } = context(server.url);
    const state = await vllmEngine.prepareCapture({ ...ctx, usesGpu: async () => true }, dir);
    assert.deepEqual(server.methods, [
      "GET /is_sleeping",
      "stasis_weights_layout",
      "stasis_parallel",
      "stasis_dump_weights",
      "POST /sleep?level=2",
      "GET /is_sleeping",
      "stasis_trim_host_memory",
      "stasis_gpu_memory",
      "stasis_comm_suspend",
    ]);
    assert.equal(state.ranks, 2);
    assert.equal(state.commsSuspended, true);
    assert.equal(state.stage, undefined, "staging is for one worker only: each rank is refilled in place");
    assert.ok(
      logs.some((l) =>
        /2 workers \(tensor parallel 2, pipeline parallel 1\); all-reduce paths live: pynccl/.test(
          (l as { message: string }).message,
        ),
      ),
    );
    server.methods.length = 0;
    await vllmEngine.resume(ctx, state, dir);
    assert.deepEqual(server.methods.slice(0, 3), [
      "stasis_comm_resume",
      "POST /wake_up?tags=weights",
      "stasis_load_weights",
    ]);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("an NCCL without ncclCommSuspend leaves the communicators as they are, with a warning; other failures fail", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stasis-tp2-"));
  const unsupported = {
    method: "stasis_comm_suspend",
    code: "nccl_suspend_unsupported",
    message: "no ncclCommSuspend",
  };
  const server = await fakeServer(tp2({}, undefined, unsupported));
  try {
    const { ctx, logs } = context(server.url);
    const state = await vllmEngine.prepareCapture({ ...ctx, usesGpu: async () => true }, dir);
    assert.equal(state.commsSuspended, undefined);
    assert.ok(
      logs.some((l) =>
        /NCCL communicators left as they are .*no ncclCommSuspend/.test((l as { message: string }).message),
      ),
    );
  } finally {
    await server.close();
  }
  const stuck = {
    method: "stasis_comm_suspend",
    code: "nccl_timeout",
    message: "ncclCommSuspend of tp:0 did not return",
  };
  const failing = await fakeServer(tp2({}, undefined, stuck));
  try {
    await assert.rejects(
      vllmEngine.prepareCapture({ ...context(failing.url).ctx, usesGpu: async () => true }, dir),
      (e: Error & { code?: string }) => e.code === "E_CUDA_TIMEOUT" && /did not return/.test(e.message),
    );
  } finally {
    await failing.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a hibernate puts a restored server back to sleep as its snapshot holds it, dumping nothing", async () => {
  const server = await fakeServer((m) => [
    200,
    m === "GET /is_sleeping"
      ? { is_sleeping: true }
      : m.startsWith("stasis_")
        ? { results: [{ ok: true, rank: 0, world_size: 1 }] }
        : {},
  ]);
  try {
    const { ctx } = context(server.url);
    const state = {
      ...LEVEL2,
      ranks: 1,
      wakeTags: ["default"],
      files: [{ path: "weights/rank0.stasisw", role: "weights" as const }],
    };
    const again = await vllmEngine.resleep!(ctx, state);
    // No host trim: nothing is dumped, and its garbage collection would hold up a swap's hand-over.
    assert.deepEqual(server.methods, ["POST /sleep?level=2", "GET /is_sleeping"]);
    assert.deepEqual(again, state, "the snapshot's own state: its weights file, its tags to wake");
  } finally {
    await server.close();
  }
});

test("a server captured without sleep mode has no state to go back to: hibernate prepares as a capture", async () => {
  const server = await fakeServer(() => [200, {}]);
  try {
    const { ctx } = context(server.url);
    assert.equal(await vllmEngine.resleep!(ctx, { sleepLevel: 0, reason: "no sleep mode" }), undefined);
    assert.deepEqual(server.methods, [], "nothing asked of the server");
  } finally {
    await server.close();
  }
});
