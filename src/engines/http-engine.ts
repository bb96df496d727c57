import { StasisError } from "../errors.js";
import { httpRequest } from "./http-client.js";
import type { CanaryAnswer, CanaryRequest, Engine, EngineContext, EngineState } from "./engine.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `path` until it answers 2xx, the server dies, or `timeoutMs` passes. Shared by every engine. While it
 * waits, a `waiting` event about once every `reportMs` says for how long, and what the last try got.
 */
export async function pollReady(
  ctx: EngineContext,
  path: string,
  timeoutMs: number,
  intervalMs = 50,
  reportMs = 1_000,
): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last = "no answer yet";
  let reported = started;
  while (Date.now() < deadline) {
    if (Date.now() - reported >= reportMs) {
      reported = Date.now();
      const e = ctx.events;
      const url = ctx.baseUrl + path;
      e.emit({
        type: "waiting",
        phase: "ready",
        t: e.t(),
        elapsedMs: reported - started,
        url,
        last,
        logPath: ctx.logPath,
      });
    }
    if (!ctx.alive()) {
      throw new StasisError(
        "E_SERVER_EXITED",
        `the server exited before it was ready (last readiness check: ${last})`,
        {
          hint: `see its output: ${ctx.logPath}`,
        },
      );
    }
    try {
      const res = await httpRequest(ctx.baseUrl + path, { timeoutMs: 5_000, signal: ctx.signal });
      if (res.status >= 200 && res.status < 300) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      last = (err as Error).message;
    }
    await sleep(intervalMs);
  }
  throw new StasisError(
    "E_READY_TIMEOUT",
    `the server was not ready at ${ctx.baseUrl + path} within ${Math.round(timeoutMs / 1000)} s (last: ${last})`,
    {
      hint: `raise --ready-timeout, or check the ready URL; the server's output: ${ctx.logPath}`,
    },
  );
}

export async function sendCanary(ctx: EngineContext, canary: CanaryRequest): Promise<{ status: number; body: string }> {
  return httpRequest(ctx.baseUrl + canary.path, {
    method: canary.method,
    body: canary.body,
    timeoutMs: 120_000,
    signal: ctx.signal,
  });
}

/** Any HTTP server: ready when its readiness URL answers 2xx; its canary answer is compared byte for byte. */
export const httpEngine: Engine = {
  kind: "http",
  waitReady: pollReady,
  async defaultCanary(): Promise<CanaryRequest> {
    throw new StasisError("E_USAGE", "the http engine needs a canary request", {
      hint: "pass --canary-url (and --canary-body for a POST); its answer must be the same after every restore",
    });
  },
  async warmup(ctx, canary, count) {
    for (let i = 0; i < count; i++) {
      await sendCanary(ctx, canary);
      ctx.events.progress("warmup", i + 1, count, "items");
    }
  },
  async canary(ctx, canary): Promise<CanaryAnswer> {
    const res = await sendCanary(ctx, canary);
    return { status: res.status, text: res.body };
  },
  async firstToken(ctx, canary) {
    const res = await sendCanary(ctx, canary);
    if (res.status < 200 || res.status >= 300)
      throw new StasisError("E_ENGINE", `${canary.path} answered ${res.status}`);
  },
  async prepareCapture(): Promise<EngineState> {
    return {};
  },
  async resume(): Promise<void> {},
  async identify() {
    return undefined;
  },
};
