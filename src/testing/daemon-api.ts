/** Test support: requests to `stasis serve` over its unix socket or TCP, and its answers checked against the
 *  published OpenAPI document (schemas/openapi.json). */
import { request, type IncomingHttpHeaders } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { REPO } from "./cli.js";

/** Where the daemon is: its socket, or a TCP port (with the token to send, if any). */
export type At = { socket: string } | { host?: string; port: number; token?: string };

export interface ApiAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The JSON body (null when it is not JSON); for NDJSON, every line parsed. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  lines: any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function api(
  at: At,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  const where =
    "socket" in at
      ? { socketPath: at.socket }
      : {
          host: at.host ?? "127.0.0.1",
          port: at.port,
          headers: at.token ? { authorization: `Bearer ${at.token}` } : {},
        };
  const allHeaders = {
    ...("headers" in where ? where.headers : {}),
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    ...headers,
  };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, agent: false, method, path, headers: allHeaders }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        const ndjson = (res.headers["content-type"] ?? "").includes("ndjson");
        const lines = ndjson
          ? text
              .split("\n")
              .filter((l) => l.trim())
              .map((l) => JSON.parse(l))
          : [];
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {
          // NDJSON or text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, lines });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
  });
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
let loaded = false;

/** Asserts that `value` is valid against components.schemas[id] of schemas/openapi.json. */
export function assertAnswer(value: unknown, id: string): void {
  if (!loaded) {
    ajv.addSchema({ ...JSON.parse(readFileSync(join(REPO, "schemas", "openapi.json"), "utf8")), $id: "openapi.json" });
    loaded = true;
  }
  const validate = ajv.getSchema(`openapi.json#/components/schemas/${id}`);
  assert.ok(validate, `no schema ${id} in schemas/openapi.json`);
  assert.ok(validate(value), `${id}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 1500)}`);
}
