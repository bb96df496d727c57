/** Test support: validate a `--json` document against the JSON Schema published for it in schemas/. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { REPO } from "./cli.js";

const ajv = new Ajv2020({ allErrors: true, strict: false });

/** Asserts that `doc` is valid against schemas/<its schema>.json, the file a reader of stasis's output gets. */
export function assertValidDocument(doc: unknown, expected: string): void {
  assert.ok(doc && typeof doc === "object", `not a JSON document: ${String(doc)}`);
  const schema = (doc as { schema?: unknown }).schema;
  assert.equal(schema, expected);
  const file = join(REPO, "schemas", `${String(schema).replace("/", ".")}.json`);
  const validate =
    ajv.getSchema(file) ?? (ajv.addSchema(JSON.parse(readFileSync(file, "utf8")), file), ajv.getSchema(file)!);
  assert.ok(validate(doc), `${expected}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(doc).slice(0, 2000)}`);
}

/** Asserts that `doc` is valid against contracts/<name>.schema.json, the cross-language contract the engine side's
 *  tests check too. */
export function assertValidContract(doc: unknown, name: string): void {
  const file = join(REPO, "contracts", `${name}.schema.json`);
  const validate =
    ajv.getSchema(file) ?? (ajv.addSchema(JSON.parse(readFileSync(file, "utf8")), file), ajv.getSchema(file)!);
  assert.ok(validate(doc), `${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(doc).slice(0, 2000)}`);
}
