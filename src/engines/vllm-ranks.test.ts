import { test } from "node:test";
import assert from "node:assert/strict";
import { StasisError } from "../errors.js";
import { checkRanks } from "./vllm-ranks.js";

const ok = (rank: number, worldSize = 2) => ({ ok: true, rank, world_size: worldSize });

function refused(fn: () => unknown, code: string, message: RegExp, hint?: RegExp): void {
  assert.throws(fn, (e: StasisError) => {
    assert.equal(e.code, code);
    assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? "", hint);
    return true;
  });
}

test("every worker answered: ranks 0..n-1 once each, n from the caller or from the workers' world size", () => {
  assert.equal(checkRanks("m", [ok(1), ok(0)]).length, 2);
  assert.equal(checkRanks("m", [ok(0), ok(1)], 2).length, 2);
  // One answer without a rank or world size: the one worker of an engine that predates them.
  assert.equal(checkRanks("m", [{ ok: true }]).length, 1);
  assert.equal(checkRanks("m", [{ ok: true }], 1).length, 1);
});

test("a tensor-parallel answer with a worker missing is refused, naming the rank", () => {
  refused(
    () => checkRanks("stasis_dump_weights", [ok(0)]),
    "E_ENGINE",
    /1 answers for 2 workers \(no answer from rank 1\)/,
  );
  refused(
    () => checkRanks("stasis_load_weights", [ok(0, 1)], 2),
    "E_ENGINE",
    /1 answers for 2 workers \(no answer from rank 1\)/,
    /captured with 2 workers/,
  );
  refused(() => checkRanks("m", [ok(0), ok(0)]), "E_ENGINE", /no answer from rank 1; rank 0 answered twice/);
  refused(() => checkRanks("m", [ok(0), ok(5)]), "E_ENGINE", /unexpected rank 5/);
  refused(() => checkRanks("m", [ok(0), { ok: true }]), "E_ENGINE", /unexpected rank undefined/);
  refused(() => checkRanks("m", [ok(0, 2), ok(1, 4)]), "E_ENGINE", /disagree on the world size \(2, 4\)/);
});

test("an answer that is not the worker extension's is refused with the flag that loads it", () => {
  refused(() => checkRanks("m", undefined), "E_ENGINE", /answered no worker results/, /VLLM_SERVER_DEV_MODE=1/);
  refused(() => checkRanks("m", []), "E_ENGINE", /answered no worker results/);
  // What vLLM's /collective_rpc makes of a method the worker lacks or answers otherwise: str(result), or null.
  refused(() => checkRanks("m", [ok(0), null]), "E_ENGINE", /worker answer 1 is null/, /--worker-extension-cls/);
  refused(() => checkRanks("m", ["None"]), "E_ENGINE", /worker answer 0 is "None", not a stasis answer/);
});

test("a failed worker fails the call with its own message, code and hint, before the count is checked", () => {
  const error = { code: "weights_layout", message: "extent 3 differs", hint: "start it as at capture" };
  refused(
    () => checkRanks("stasis_load_weights", [ok(0), { ok: false, rank: 1, world_size: 2, error }], 4),
    "E_WEIGHTS_INVALID",
    /^stasis_load_weights failed in rank 1: extent 3 differs$/,
    /start it as at capture/,
  );
});
