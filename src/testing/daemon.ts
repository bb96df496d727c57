/** Test support: a real `stasis serve` in a child process, its log (standard error) kept for the assertions. */
import { spawn, type ChildProcess } from "node:child_process";
import { MAIN } from "./cli.js";

export interface Daemon {
  child: ChildProcess;
  /** Everything it has logged so far. */
  log: () => string;
  /** Its exit status, once it has exited. */
  exited: Promise<number | null>;
  /** SIGTERM (the daemon stops cleanly on it), then its exit status. */
  stop: () => Promise<number | null>;
  /** The log line's match that said it listens (`listening`), for what it names (a TCP port). */
  listening: RegExpExecArray;
}

/**
 * Starts `stasis serve ARGS` with `env` (a tempHome's) and resolves once its log matches `listening`; a daemon
 * that exits first, or does not listen within `timeoutMs`, fails the test with its log (and is ended).
 *
 * @example
 *   const daemon = await startDaemon(env, ["--pin-weights"]);
 *   try { ... } finally { await daemon.stop(); }
 *   assert.equal(await daemon.exited, 0, daemon.log());
 */
export async function startDaemon(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  listening = /listening on/,
  timeoutMs = 10_000,
): Promise<Daemon> {
  const child = spawn(process.execPath, [MAIN, "serve", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  let gone = false;
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      gone = true;
      resolve(code);
    }),
  );
  const stop = async () => {
    if (!gone) child.kill("SIGTERM");
    return exited;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = listening.exec(log);
    if (match) return { child, log: () => log, exited, stop, listening: match };
    if (gone || Date.now() > deadline) {
      await stop();
      throw new Error(`stasis serve ${args.join(" ")} ${gone ? "exited" : "did not listen"}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
