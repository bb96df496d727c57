import { resolve } from "node:path";
import type { CliCommand } from "../registry.js";
import { StasisError } from "../../errors.js";
import { envPairs, num, oneOf, str } from "../args.js";
import { interruptSignal } from "../interrupt.js";
import { renderTimeline } from "../render/timeline.js";
import { formatBytes, formatMs } from "../../text.js";
import type { CanaryRequest } from "../../engines/engine.js";
import type { CaptureRequest } from "../../serve/protocol.js";
import { requestKnobs } from "../../config/config.js";

export const command: CliCommand = {
  args: ["<name>"],
  passthrough: "<command...>",
  help: [
    "Starts <command> in its own session and PID namespace (stdout/stderr to log files), waits until --ready-url",
    "answers 2xx, sends --warmup canary requests, records the canary's answer, and snapshots the whole process",
    "tree (GPU state too) into $STASIS_HOME/snapshots/<name>. The snapshot appears only if everything succeeded.",
    "Everything that can be checked before the server starts is (root, the store, the ready URL's port, the",
    "canary, vLLM's flags), so a mistake costs no model load. Nothing after `--` is read by stasis. A running",
    '`stasis serve` does the capture when there is one (STASIS_NO_DAEMON=1: never; --json says which, "via");',
    "the server starts from this shell's environment and working directory either way.",
  ].join("\n"),
  options: {
    "ready-url": {
      type: "string",
      arg: "URL",
      help: "answers 2xx once the server is ready; its origin is the server's address",
    },
    "ready-timeout": { type: "string", arg: "S", help: "seconds to wait for readiness (default 300)" },
    "canary-url": {
      type: "string",
      arg: "URL",
      help: [
        "the request whose answer must be identical after every restore (GET, or POST with",
        "--canary-body); needed with --engine http; vllm defaults to a greedy completion",
      ].join("\n"),
    },
    "canary-body": { type: "string", arg: "JSON", help: "the canary's POST body" },
    warmup: {
      type: "string",
      arg: "N",
      help: "requests to send before the canary is recorded (default 0): the canary, or\n--warmup-url",
    },
    "warmup-url": {
      type: "string",
      arg: "URL",
      help: "the warm-up request instead of the canary (GET, or POST with --warmup-body)",
    },
    "warmup-body": { type: "string", arg: "JSON", help: "the warm-up request's POST body" },
    engine: {
      type: "string",
      arg: "http|vllm",
      help: [
        "http: any server (default); vllm: vLLM's control API (sleep level 2, weight",
        "dump and refill; vLLM needs --enable-sleep-mode, VLLM_SERVER_DEV_MODE=1 and",
        "--worker-extension-cls stasis_engine.vllm.StasisWorkerExtension)",
      ].join("\n"),
    },
    "allow-full-image": {
      type: "boolean",
      help: [
        "capture a vllm server that cannot sleep at level 2 anyway (vLLM on the CPU): its",
        "weights and KV cache stay in the image, which is then as large as its memory",
      ].join("\n"),
    },
    env: {
      type: "string",
      multiple: true,
      arg: "K=V",
      help: "set an environment variable for the server (repeatable)",
    },
    cwd: { type: "string", arg: "DIR", help: "the server's working directory (default: the current one)" },
    "leave-running": {
      type: "boolean",
      help: "keep the original server running after the snapshot (listed by `stasis ps`)",
    },
  },
  async run({ values, positionals, passthrough, events, config, settings }) {
    const name = positionals[0]!;
    if (passthrough.length === 0)
      throw new StasisError("E_USAGE", "missing the server's command", {
        hint: "put it after `--`: stasis capture <name> [options] -- <command...>",
      });
    const readyUrl = str(values, "ready-url");
    if (!readyUrl)
      throw new StasisError("E_USAGE", "missing --ready-url", {
        hint: "e.g. --ready-url http://127.0.0.1:8000/health",
      });
    const ready = parseUrl(readyUrl, "ready-url");
    const canary = request(values, "canary", ready.origin);
    const warmupRequest = request(values, "warmup", ready.origin);
    const { signal, dispose } = interruptSignal();
    try {
      const captureRequest: CaptureRequest = {
        name,
        argv: passthrough,
        // Absolute: a daemon doing the capture resolves nothing against its own working directory.
        cwd: resolve(str(values, "cwd") ?? "."),
        env: envPairs(values, "env"),
        engine: oneOf(values, "engine", ["http", "vllm"] as const, "http"),
        readyUrl,
        readyTimeoutMs: num(values, "ready-timeout", 300, { min: 1 }) * 1000,
        warmup: num(values, "warmup", 0, { min: 0 }),
        canary,
        warmupRequest,
        leaveRunning: Boolean(values["leave-running"]),
        allowFullImage: Boolean(values["allow-full-image"]),
        // The knobs this command's user set: a daemon's capture uses them over its own settings.
        config: requestKnobs(settings),
      };
      // In this process, the settings read as it started.
      const { config: _sent, ...options } = captureRequest;
      // A running `stasis serve` does the work; the server still starts from this shell's environment.
      const { daemonOr, captureViaDaemon } = await import("../../serve/client.js");
      const { value: result, via } = await daemonOr(
        () => captureViaDaemon({ ...captureRequest, baseEnv: definedEnv() }, events, { signal }),
        async () => (await import("../../capture/capture.js")).capture({ ...options, config, signal }, events),
      );
      const m = result.manifest;
      const bytes = m.files.reduce((a, f) => a + f.size, 0);
      const text = [
        renderTimeline(result.phases),
        "",
        `captured "${name}" in ${formatMs(m.timings.totalMs ?? 0)} (cold start to ready: ${formatMs(m.timings.coldStartMs ?? 0)}), ${m.tree.processes} processes${m.tree.cudaProcesses ? ` (${m.tree.cudaProcesses} with CUDA)` : ""}, ${formatBytes(bytes)} in ${result.dir}`,
        result.instance ? `the original keeps running as instance ${result.instance.id}` : "",
      ]
        .filter((l) => l !== "")
        .join("\n");
      return {
        data: {
          snapshot: name,
          snapshotDir: result.dir,
          instance: result.instance,
          manifest: m,
          phases: result.phases,
          via,
        },
        text,
      };
    } finally {
      dispose();
    }
  },
};

/** --<what>-url and --<what>-body as a request to the server at `origin` (GET without a body, POST with one). */
function request(values: Record<string, unknown>, what: string, origin: string): CanaryRequest | undefined {
  const url = str(values, `${what}-url`);
  const body = str(values, `${what}-body`);
  if (!url) {
    if (body !== undefined) throw new StasisError("E_USAGE", `--${what}-body needs --${what}-url`);
    return undefined;
  }
  const u = parseUrl(url, `${what}-url`);
  if (u.origin !== origin)
    throw new StasisError("E_USAGE", `--${what}-url must be on the same server as --ready-url (${origin})`);
  if (body !== undefined) {
    try {
      JSON.parse(body);
    } catch {
      throw new StasisError("E_USAGE", `--${what}-body: expected JSON`);
    }
  }
  return {
    method: body === undefined ? "GET" : "POST",
    path: u.pathname + u.search,
    ...(body === undefined ? {} : { body }),
  };
}

function parseUrl(text: string, option: string): URL {
  try {
    const u = new URL(text);
    if (u.protocol !== "http:") throw new Error("not http");
    return u;
  } catch {
    throw new StasisError("E_USAGE", `--${option}: expected an http:// URL, got "${text}"`);
  }
}

/** This process's environment without unset entries, as a capture through the daemon sends it. */
function definedEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
}
