#!/usr/bin/env node
// Writes the JSON Schema of every `--json` document (schemas/stasis.<command>.v1.json) from the zod shapes in
// src/cli/schemas/schemas.ts. Run after `npm run build`; src/cli/schemas/schemas.test.ts fails while they differ.
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
