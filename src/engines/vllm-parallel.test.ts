import { test } from "node:test";
import assert from "node:assert/strict";
import { StasisError } from "../errors.js";
import { parallelSetup, refuseCrossProcessAllReduce } from "./vllm-parallel.js";

/** A worker's `stasis_parallel` answer, as python/stasis_engine/vllm/_parallel.py writes it. */
const facts = (rank: number, allReduce: Record<string, boolean>) => ({
  ok: true,
  rank,
  world_size: 2,
  tensor_parallel_size: 2,
  pipeline_parallel_size: 1,
  all_reduce: { communicator: "CudaCommunicator", custom: false, symm_mem: false, flashinfer: false, ...allReduce },
});

test("a TP=2 server with NCCL alone passes; the live paths are listed by rank", () => {
  const setup = parallelSetup([facts(0, { pynccl: true }), facts(1, { pynccl: true })]);
  assert.deepEqual(setup, { ranks: 2, tensorParallel: 2, pipelineParallel: 1, live: { pynccl: [0, 1] } });
  refuseCrossProcessAllReduce(setup);
});

test("custom all-reduce and symmetric memory are refused, each with the switch that turns it off", () => {
  const setup = parallelSetup([
    facts(0, { custom: true, symm_mem: true, pynccl: true }),
    facts(1, { custom: true, pynccl: true }),
  ]);
  assert.throws(
    () => refuseCrossProcessAllReduce(setup),
    (e: StasisError) => {
      assert.equal(e.code, "E_ENGINE");
      assert.match(e.message, /^the 2 workers share GPU memory the CUDA checkpoint cannot take: /);
      assert.match(
        e.message,
        /vLLM's custom all-reduce \(CUDA IPC buffers.*\) in rank 0, 1; torch symmetric .* in rank 0$/,
      );
      assert.match(
        e.hint ?? "",
        /^turn them off: vllm serve --disable-custom-all-reduce; VLLM_ALLREDUCE_USE_SYMM_MEM=0/,
      );
      assert.deepEqual(e.details?.live, { custom: [0, 1], symm_mem: [0], pynccl: [0, 1] });
      return true;
    },
  );
  assert.throws(
    () => refuseCrossProcessAllReduce(parallelSetup([facts(0, { flashinfer: true }), facts(1, {})])),
    (e: StasisError) => /^turn it off: VLLM_ALLREDUCE_USE_FLASHINFER=0/.test(e.hint ?? ""),
  );
});

test("one worker is never refused (no other worker's memory to share)", () => {
  refuseCrossProcessAllReduce(parallelSetup([facts(0, { custom: true })]));
});
