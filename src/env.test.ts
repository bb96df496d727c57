import { test } from "node:test";
import assert from "node:assert/strict";
import { envChoice, envInt } from "./env.js";

test("an integer knob is taken only when it is an integer in its range", () => {
  const env = { A: "3", B: "0", C: "65", D: "2.5", E: "x", F: "" };
  assert.equal(envInt("A", 1, 64, env), 3);
  assert.equal(envInt("B", 0, 4, env), 0);
  assert.equal(envInt("B", 1, 64, env), undefined);
  assert.equal(envInt("C", 1, 64, env), undefined);
  assert.equal(envInt("C", 1, undefined, env), 65);
  assert.equal(envInt("D", 1, 64, env), undefined);
  assert.equal(envInt("E", 1, 64, env), undefined);
  assert.equal(envInt("F", 1, 64, env), undefined);
  assert.equal(envInt("unset", 0, 4, env), undefined);
});

test("a choice knob is taken only when it is one of the choices", () => {
  const env = { A: "read", B: "Read", C: "" };
  const ways = ["populate", "read", "fadvise"] as const;
  assert.equal(envChoice("A", ways, env), "read");
  assert.equal(envChoice("B", ways, env), undefined);
  assert.equal(envChoice("C", ways, env), undefined);
  assert.equal(envChoice("unset", ways, env), undefined);
});
