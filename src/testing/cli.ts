/** Test support: run the real `stasis` CLI in a child process against a throwaway store. */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const EXAMPLES = join(REPO, "examples");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Both streams, for assertion messages (with --json an error is printed on stdout). */
  output: string;
  /** stdout parsed, when the command ran with --json. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function stasis(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        // A test that reads .json of a run whose output is not JSON fails with the output in the message.
        json = args.includes("--json")
          ? new Proxy(
              {},
              {
                get: (_t, key) => {
                  throw new Error(
                    `stasis ${args.join(" ")} (exit ${code}) printed no JSON (reading .${String(key)})\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
                  );
                },
              },
            )
          : undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, output: `${stderr}\n${stdout.slice(-4000)}`, json });
    });
  });
}

/**
 * A fresh STASIS_HOME for one test file. `cleanup` removes it; `teardown` first stops every instance still
 * running from it (`stasis stop --all --grace S`) and removes its snapshots with `stasis rm` (which removes what
 * they own outside the folder), then removes it and the other folders named.
 */
export function tempHome(): {
  home: string;
  env: NodeJS.ProcessEnv;
  cleanup: () => void;
  teardown: (graceSeconds: number, ...alsoRemove: string[]) => Promise<void>;
} {
  const home = mkdtempSync(join(tmpdir(), "stasis-itest-"));
  const env = { STASIS_HOME: home };
  const cleanup = () => rmSync(home, { recursive: true, force: true });
  const teardown = async (graceSeconds: number, ...alsoRemove: string[]) => {
    await stasis(["stop", "--all", "--grace", String(graceSeconds)], env);
    // `rm`, not just the folder's removal: a snapshot never restored owns CRIU's network-lock table.
    const names = ((await stasis(["ls", "--json"], env)).json as { snapshots: { name: string }[] }).snapshots.map(
      (s) => s.name,
    );
    if (names.length > 0) await stasis(["rm", ...names], env);
    cleanup();
    for (const dir of alsoRemove) rmSync(dir, { recursive: true, force: true });
  };
  return { home, env, cleanup, teardown };
}

/**
 * Runs `stasis ARGS` with `env` in the background and kills it (SIGKILL) once `ready()` holds (checked every 50 ms,
 * 30 s at most): a run killed half-way, as a crash or the OOM killer would.
 */
export async function killWhen(args: string[], env: NodeJS.ProcessEnv, ready: () => boolean): Promise<void> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: "ignore" });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  for (let i = 0; i < 600 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGKILL");
  await exited;
}
