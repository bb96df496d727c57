/** Test support: capture one of the example servers (examples/) through the real CLI, on a free port. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../proc/net.js";
import { EXAMPLES, stasis, type CliRun } from "./cli.js";

export interface ExampleOptions {
  /** The example server (default slow_server.py; both take --port and --startup-seconds). */
  server?: "slow_server.py" | "two_process_server.py";
  /** Its --startup-seconds (default 0). */
  startupSeconds?: number;
  /** More of its arguments (`["--ballast-mb", "96"]`). */
  serverArgs?: string[];
  /** The canary's path (default `/answer?q=NAME`). */
  canary?: string;
  /** More of `stasis capture`'s options (`["--leave-running"]`), or a function of the server's URL that gives them. */
  options?: string[] | ((base: string) => string[]);
  /** false: return a failed capture instead of failing the test with its output (a test of the failure). */
  mustSucceed?: boolean;
}

export interface ExampleCapture {
  /** The capture's run, its --json document in `json`. */
  cap: CliRun;
  /** The port the server listens on, and its URL there (`http://127.0.0.1:PORT`). */
  port: number;
  base: string;
}

/**
 * `stasis capture NAME --json --ready-url BASE/health --canary-url BASE/answer?q=NAME -- python3 examples/SERVER
 * --port PORT --startup-seconds S`, on a free port, with `env` (a tempHome's).
 *
 * @example
 *   const { cap, base } = await captureExample("pk", env, { startupSeconds: 0.3 });
 */
export async function captureExample(
  name: string,
  env: NodeJS.ProcessEnv,
  opts: ExampleOptions = {},
): Promise<ExampleCapture> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const canary = `${base}${opts.canary ?? `/answer?q=${name}`}`;
  const server = ["python3", join(EXAMPLES, opts.server ?? "slow_server.py"), "--port", String(port)];
  const options = typeof opts.options === "function" ? opts.options(base) : (opts.options ?? []);
  const cap = await stasis(
    ["capture", name, "--json", "--ready-url", `${base}/health`, "--canary-url", canary, ...options].concat(
      "--",
      server,
      ["--startup-seconds", String(opts.startupSeconds ?? 0), ...(opts.serverArgs ?? [])],
    ),
    env,
  );
  if (opts.mustSucceed !== false) assert.equal(cap.code, 0, cap.output);
  return { cap, port, base };
}

/** Processes running the example server `server` on `port` (their command line names both): what a test left. */
export function examplesOn(port: number, server: ExampleOptions["server"] = "slow_server.py"): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmd.some((a) => a.endsWith(server)) && cmd.includes(String(port))) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
