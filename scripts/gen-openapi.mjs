#!/usr/bin/env node
// Writes the daemon's OpenAPI document (schemas/openapi.json) from its route table and zod schemas
// (src/serve/api.ts, protocol.ts). Run after `npm run build`; src/serve/openapi.test.ts fails while they differ.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const { openApiDocument } = await import(join(root, "dist/serve/openapi.js"));
writeFileSync(join(root, "schemas", "openapi.json"), JSON.stringify(openApiDocument(), null, 2) + "\n");
console.log("wrote schemas/openapi.json");
