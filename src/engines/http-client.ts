import http from "node:http";
import { StasisError } from "../errors.js";

export interface HttpResponse {
  status: number;
  body: string;
}

/**
 * One HTTP request on a fresh connection that is closed afterwards (`agent: false`, `Connection: close`).
 * stasis never keeps a connection open to a server: CRIU cannot dump a tree with a TCP connection to outside.
 */
export function httpRequest(
  url: string,
  opts: { method?: string; body?: string; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Connection: "close" };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(opts.body));
    }
    const req = http.request(
      url,
      { method: opts.method ?? (opts.body === undefined ? "GET" : "POST"), headers, agent: false, signal: opts.signal },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 60_000, () => {
      req.destroy(new StasisError("E_ENGINE", `no answer from ${url} within ${opts.timeoutMs ?? 60_000} ms`));
    });
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Same, but a non-2xx status is an E_ENGINE error quoting the server's answer. */
export async function httpOk(url: string, opts: Parameters<typeof httpRequest>[1] = {}): Promise<HttpResponse> {
  const res = await httpRequest(url, opts);
  if (res.status < 200 || res.status >= 300) {
    throw new StasisError(
      "E_ENGINE",
      `${opts.method ?? (opts.body === undefined ? "GET" : "POST")} ${url} answered ${res.status}: ${res.body.slice(0, 300)}`,
      {
        details: { status: res.status },
      },
    );
  }
  return res;
}
