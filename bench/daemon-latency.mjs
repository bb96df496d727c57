#!/usr/bin/env node
// Median and p90 time of requests to a running `stasis serve` over its socket: GET /v1/health and a restore refused at
// once (no such snapshot, streamed), 300 each after 30 to warm up, one at a time. Usage: node bench/daemon-latency.mjs
// SOCKET. docs/decisions/0014-daemon-http.md compares the daemon on fastify with the hand-written one with it.
import { request } from "node:http";

const socket = process.argv[2];
if (!socket) {
  console.error("usage: node bench/daemon-latency.mjs SOCKET");
  process.exit(2);
}
const one = (method, path, body) =>
  new Promise((resolve, reject) => {
    const t = performance.now();
    const headers = body ? { "content-type": "application/json" } : {};
    const r = request({ socketPath: socket, agent: false, method, path, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(performance.now() - t));
    });
    r.on("error", reject);
    r.end(body);
  });
const missing = JSON.stringify({ name: "no-such-snapshot", verify: "auto", prefetch: "none", readyTimeoutMs: 1000 });
for (const [name, method, path, body] of [
  ["health", "GET", "/v1/health"],
  ["restore-refused", "POST", "/v1/restore", missing],
]) {
  for (let i = 0; i < 30; i++) await one(method, path, body);
  const xs = [];
  for (let i = 0; i < 300; i++) xs.push(await one(method, path, body));
  xs.sort((a, b) => a - b);
  console.log(`${name}: median ${xs[150].toFixed(3)} ms, p90 ${xs[270].toFixed(3)} ms`);
}
