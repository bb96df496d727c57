/**
 * The daemon's OpenAPI 3.1 document, generated from the route table (api.ts) and the zod schemas of protocol.ts:
 * what is published (schemas/openapi.json, `node scripts/gen-openapi.mjs`) is what the daemon serves, and
 * openapi.test.ts fails while the committed file differs.
 */
import { z } from "zod/v4";
import { API, type RouteSpec } from "./api.js";
import { API_SCHEMAS } from "./protocol.js";
import { VERSION } from "../version.js";

const uri = (id: string) => `#/components/schemas/${id}`;

/** JSON Schema as OpenAPI embeds it: no $schema or $id of its own, no zod id field. */
function clean(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _s, $id: _i, id: _id, ...rest } = schema;
  return rest;
}

/** A schema by reference where it has an id, else inline. Request bodies are read as input (defaults optional). */
function schemaOf(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const id = API_SCHEMAS.get(schema)?.id;
  if (id) return { $ref: uri(id) };
  return clean(z.toJSONSchema(schema, { target: "draft-2020-12", io }) as Record<string, unknown>);
}

function parameters(spec: RouteSpec): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [where, schema] of [
    ["path", spec.params],
    ["query", spec.query],
  ] as const) {
    for (const [name, field] of Object.entries(schema?.shape ?? {}) as [string, z.ZodType][]) {
      const s = schemaOf(field, "input");
      const { description, ...rest } = s;
      out.push({
        name,
        in: where,
        required: where === "path" || !field.safeParse(undefined).success,
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  return out;
}

function answer(spec: RouteSpec): Record<string, unknown> {
  const a = spec.answer;
  if ("json" in a)
    return { description: "OK", content: { "application/json": { schema: schemaOf(a.json, "output") } } };
  if ("ndjson" in a) {
    const description =
      "OK: newline-delimited JSON, each line one of the schema's kinds: events, then one result or error";
    return { description, content: { "application/x-ndjson": { schema: schemaOf(a.ndjson, "output") } } };
  }
  return { description: "OK", content: { [a.text.split(";")[0]!]: { schema: { type: "string" } } } };
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const bodies = new Set<z.ZodType>();
  for (const [name, spec] of Object.entries(API) as [string, RouteSpec][]) {
    if (spec.body) bodies.add(spec.body);
    const params = parameters(spec);
    (paths[spec.path] ??= {})[spec.method.toLowerCase()] = {
      operationId: name,
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(params.length ? { parameters: params } : {}),
      ...(spec.body
        ? { requestBody: { required: true, content: { "application/json": { schema: schemaOf(spec.body, "input") } } } }
        : {}),
      responses: { "200": answer(spec), default: { $ref: "#/components/responses/Error" } },
    };
  }
  // Bodies as the client writes them (a default may be left out), answers as the daemon writes them.
  const generated = (io: "input" | "output") =>
    (
      z.toJSONSchema(API_SCHEMAS, { target: "draft-2020-12", io, uri }) as {
        schemas: Record<string, Record<string, unknown>>;
      }
    ).schemas;
  const input = generated("input");
  const output = generated("output");
  const requestIds = new Set([...bodies].map((b) => API_SCHEMAS.get(b)?.id));
  const schemas = Object.fromEntries(
    Object.keys(output)
      .sort()
      .map((id) => [id, clean(requestIds.has(id) ? input[id]! : output[id]!)]),
  );
  return {
    openapi: "3.1.0",
    info: {
      title: "stasis daemon",
      version: VERSION,
      summary: "`stasis serve`: list, stop, capture and restore instances of snapshots; weights; metrics",
      description:
        "Served on a unix socket ($STASIS_HOME/stasisd.sock, mode 0600: root only, no token) and, with " +
        "`stasis serve --listen HOST:PORT --token-file FILE`, on TCP, where every request needs the bearer token. " +
        "Errors answer with the HTTP status of their code and a body {error: {code, message, hint}} (docs/api.md).",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    servers: [
      {
        url: "http://localhost",
        description: "curl --unix-socket $STASIS_HOME/stasisd.sock http://localhost/v1/health",
      },
    ],
    security: [{}, { bearer: [] }],
    paths,
    components: {
      schemas,
      responses: {
        Error: {
          description: "The error: its code, message and hint",
          content: { "application/json": { schema: { $ref: uri("ErrorAnswer") } } },
        },
      },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "TCP only (--listen): the token of --token-file" },
      },
    },
  };
}
