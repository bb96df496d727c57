/**
 * The published OpenAPI document (schemas/openapi.json) is the one generated from the route table and the zod
 * schemas, it is a valid OpenAPI 3.1 document by the specification's own schema, and the daemon serves every
 * operation it names.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { openApiDocument } from "./openapi.js";
import { REPO } from "../testing/cli.js";
import { buildApp, type DaemonContext } from "./routes.js";
import { ParkedPool } from "./parked.js";
import { parkedOps } from "./parked-ops.js";
import { Events } from "../events.js";
import { DaemonMetrics } from "./metrics.js";
import { API } from "./api.js";
import { readConfig } from "../config/config.js";

const published = () =>
  JSON.parse(readFileSync(join(REPO, "schemas", "openapi.json"), "utf8")) as Record<string, unknown>;

test("schemas/openapi.json is the one generated from the code (node scripts/gen-openapi.mjs)", () => {
  assert.deepEqual(
    published(),
    openApiDocument(),
    "schemas/openapi.json is stale: npm run build && node scripts/gen-openapi.mjs",
  );
});

test("schemas/openapi.json is a valid OpenAPI 3.1 document", async () => {
  const validator = new Validator();
  const r = await validator.validate(published());
  assert.equal(validator.version, "3.1");
  assert.ok(r.valid, JSON.stringify(r.errors, null, 2));
  // The validator does see a broken document: a parameter that does not say where it goes is refused.
  const broken = structuredClone(published()) as { paths: Record<string, Record<string, { parameters: object[] }>> };
  delete (broken.paths["/v1/instances"]!.get!.parameters[0] as { in?: string }).in;
  assert.equal((await new Validator().validate(broken)).valid, false);
});

test("the daemon serves every operation of the document, and the document names every route it serves", async () => {
  const ctx: DaemonContext = {
    events: new Events(),
    log: { event: () => undefined, request: () => undefined },
    metrics: new DaemonMetrics({ instances: async () => [], pinnedBytes: () => 0 }),
    cuda: { lease: async () => assert.fail("no restore here") },
    counts: { requests: 0, restores: 0, captures: 0 },
    pool: new ParkedPool(parkedOps(new Events(), readConfig().config, {})),
    settings: readConfig(),
  };
  const app = buildApp(ctx, "unix");
  await app.ready();
  const doc = published() as { paths: Record<string, Record<string, { operationId: string }>> };
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), id: op.operationId })),
  );
  assert.deepEqual(operations.map((o) => o.id).sort(), Object.keys(API).sort());
  for (const o of operations) {
    assert.ok(
      app.hasRoute({ method: o.method as "GET", url: o.path.replace(/\{(\w+)\}/g, ":$1") }),
      `${o.method} ${o.path}`,
    );
  }
  await app.close();
});
