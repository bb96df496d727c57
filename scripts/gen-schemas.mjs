#!/usr/bin/env node
// Writes the JSON Schema of every `--json` document (schemas/stasis.<command>.v1.json) from the zod shapes in
// src/cli/schemas/schemas.ts, and of every cross-language contract (contracts/<name>.schema.json) from
// src/contracts/contracts.ts. Run after `npm run build`; schemas.test.ts and contracts.test.ts fail while they differ.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const { SCHEMAS, jsonSchema } = await import(join(root, "dist/cli/schemas/schemas.js"));
mkdirSync(join(root, "schemas"), { recursive: true });
for (const name of Object.keys(SCHEMAS)) {
  writeFileSync(join(root, "schemas", `stasis.${name}.v1.json`), JSON.stringify(jsonSchema(name), null, 2) + "\n");
}
console.log(`wrote ${Object.keys(SCHEMAS).length} schemas to schemas/`);
const { CONTRACTS, contractSchema } = await import(join(root, "dist/contracts/contracts.js"));
mkdirSync(join(root, "contracts"), { recursive: true });
for (const name of Object.keys(CONTRACTS)) {
  writeFileSync(join(root, "contracts", `${name}.schema.json`), JSON.stringify(contractSchema(name), null, 2) + "\n");
}
console.log(`wrote ${Object.keys(CONTRACTS).length} contracts to contracts/`);
