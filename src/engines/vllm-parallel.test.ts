import { test } from "node:test";
import assert from "node:assert/strict";
import { StasisError } from "../errors.js";
import { parallelSetup, refuseUnsupported } from "./vllm-parallel.js";

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
  assert.deepEqual(setup, {
    ranks: 2,
    tensorParallel: 2,
    pipelineParallel: 1,
    dataParallel: 1,
    live: { pynccl: [0, 1] },
  });
  refuseUnsupported(setup, true);
});

test("custom all-reduce and symmetric memory are refused, each with the switch that turns it off", () => {
  const setup = parallelSetup([
    facts(0, { custom: true, symm_mem: true, pynccl: true }),
    facts(1, { custom: true, pynccl: true }),
  ]);
  assert.throws(
    () => refuseUnsupported(setup, true),
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
    () => refuseUnsupported(parallelSetup([facts(0, { flashinfer: true }), facts(1, {})]), true),
    (e: StasisError) => /^turn it off: VLLM_ALLREDUCE_USE_FLASHINFER=0/.test(e.hint ?? ""),
  );
});

test("one worker is never refused (no other worker's memory to share)", () => {
  refuseUnsupported(parallelSetup([facts(0, { custom: true })]), true);
});

test("data parallelism is refused where the capture dumps weights per rank, not where all stays in the image", () => {
  // What the first of two data-parallel engines' one worker answers: /collective_rpc reaches no other's.
  const setup = parallelSetup([{ ...facts(0, {}), world_size: 1, tensor_parallel_size: 1, data_parallel_size: 2 }]);
  assert.equal(setup.dataParallel, 2);
  assert.throws(
    () => refuseUnsupported(setup, true),
    (e: StasisError) =>
      e.code === "E_ENGINE" &&
      /runs 2 data-parallel engines; vLLM's \/collective_rpc answers for the first one only/.test(e.message) &&
      /--data-parallel-size 1/.test(e.hint ?? ""),
  );
  refuseUnsupported(setup, false);
});
