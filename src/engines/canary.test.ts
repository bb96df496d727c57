import { test } from "node:test";
import assert from "node:assert/strict";
import { canaryRecord, checkCanary, checkStableCanary } from "./canary.js";
import { canonicalCompletion } from "./vllm-engine.js";
import { StasisError } from "../errors.js";

test("a canary is recorded with its digest and must match exactly", () => {
  const rec = canaryRecord({ method: "GET", path: "/a" }, { status: 200, text: "42" });
  assert.equal(rec.text, "42");
  checkCanary(rec, { status: 200, text: "42" });
  assert.throws(
    () => checkCanary(rec, { status: 200, text: "43" }),
    (e: StasisError) => e.code === "E_CANARY_MISMATCH" && /"43"/.test(e.message),
  );
  assert.throws(
    () => checkCanary(rec, { status: 500, text: "42" }),
    (e: StasisError) => e.code === "E_CANARY_MISMATCH",
  );
  assert.throws(
    () => canaryRecord({ method: "GET", path: "/a" }, { status: 404, text: "no" }),
    (e: StasisError) => e.code === "E_ENGINE",
  );
});

test("a vLLM completion is compared without its id and timestamp, with stable key order", () => {
  const a = JSON.stringify({
    id: "cmpl-1",
    created: 1,
    model: "m",
    choices: [{ text: "hi", index: 0, logprobs: { b: 1, a: 2 } }],
    usage: { total_tokens: 3 },
  });
  const b = JSON.stringify({
    usage: { total_tokens: 3 },
    created: 2,
    id: "cmpl-2",
    model: "m",
    choices: [{ index: 0, logprobs: { a: 2, b: 1 }, text: "hi" }],
  });
  assert.equal(canonicalCompletion(a), canonicalCompletion(b));
  assert.notEqual(canonicalCompletion(a), canonicalCompletion(a.replace('"hi"', '"ho"')));
  assert.equal(canonicalCompletion("not json"), "not json");
});

test("a canary that answers differently the second time is refused at capture, with a hint to fix it", () => {
  const rec = canaryRecord({ method: "GET", path: "/stats" }, { status: 200, text: '{"requests": 1}' });
  checkStableCanary(rec, { status: 200, text: '{"requests": 1}' });
  assert.throws(
    () => checkStableCanary(rec, { status: 200, text: '{"requests": 2}' }),
    (e: StasisError) =>
      e.code === "E_CANARY_UNSTABLE" &&
      /answered differently twice in a row/.test(e.message) &&
      /temperature 0/.test(e.hint ?? "") &&
      /--canary-body/.test(e.hint ?? ""),
  );
});
