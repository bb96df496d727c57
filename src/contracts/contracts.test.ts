import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CONTRACTS, contractSchema, type ContractName } from "./contracts.js";
import { ENGINE_ERROR_CODES, productCode } from "./engine-errors.js";
import { REPO } from "../testing/cli.js";
import { assertValidContract } from "../testing/schemas.js";

test("the published contracts are the ones generated from the code (node scripts/gen-schemas.mjs)", () => {
  const published = readdirSync(join(REPO, "contracts")).sort();
  assert.deepEqual(published, Object.keys(CONTRACTS).map((n) => `${n}.schema.json`).sort());
  for (const name of Object.keys(CONTRACTS) as ContractName[]) {
    const file = JSON.parse(readFileSync(join(REPO, "contracts", `${name}.schema.json`), "utf8")) as unknown;
    assert.deepEqual(file, contractSchema(name), `contracts/${name}.schema.json is stale`);
  }
});

test("engine error codes map by the table: weights problems are E_WEIGHTS_INVALID, an unknown code E_ENGINE", () => {
  assert.equal(productCode("weights_checksum"), "E_WEIGHTS_INVALID");
  assert.equal(productCode("weights_layout"), "E_WEIGHTS_INVALID");
  assert.equal(productCode("gpu_memory"), "E_ENGINE");
  assert.equal(productCode("a_code_from_a_newer_engine"), "E_ENGINE");
  assert.equal(productCode(undefined), "E_ENGINE");
  assert.equal(productCode("toString"), "E_ENGINE", "not a key of the table's prototype");
  const codes = Object.keys(ENGINE_ERROR_CODES);
  assertValidContract({ code: codes[0], message: "m", hint: null }, "engine-error");
  assert.throws(() => assertValidContract({ code: "no_such_code", message: "m" }, "engine-error"), /code/);
});
