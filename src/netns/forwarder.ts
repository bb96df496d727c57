import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { tail } from "../proc/run.js";
import { formatAddress, type Published } from "./publish.js";

const MAIN = fileURLToPath(new URL("./forwarder-main.js", import.meta.url));

/** A forwarder started ahead of CRIU: `serve` hands it the namespace once restored; `kill` for a failed restore. */
export interface PendingForwarder {
  pid: number;
  /** Resolves with the port it listens on once it serves the namespace of `nsInit`. */
  serve(nsInit: number, timeoutMs?: number): Promise<number>;
  kill(): void;
}

/**
 * Starts the forwarder of a namespaced instance (forwarder-main.ts), detached: it outlives this process, as the
 * restored server does, and ends with the namespace's init. It is started before CRIU runs, so that Node's start-up
 * (0.3 s on a busy two-core machine, measured) overlaps the restore, and told the namespace once CRIU is done.
 *
 * Why a forwarder in user space and not a veth pair with DNAT: a server captured listening on 127.0.0.1 (the usual
 * way, and vLLM's default for its internal ports) listens on the namespace's own loopback, which no route from the
 * host reaches (the kernel drops packets to 127/8 arriving on another interface unless route_localnet is set, and
 * DNAT to it needs that too). A process that accepts in the host's namespace and connects in the instance's reaches
 * any address the server listens at, needs no addresses, routes or firewall rules, leaves nothing behind when it
 * dies, and runs the same in a container. It costs a copy per byte, which an LLM server's requests and streamed
 * tokens do not notice.
 */
export function startForwarder(opts: {
  listen: Published;
  target: { host: string; port: number };
  dir: string;
}): PendingForwarder {
  const log = join(opts.dir, "forwarder.log");
  const logFd = openSync(log, "a", 0o600);
  const args = [MAIN, opts.listen.host, String(opts.listen.port), opts.target.host, String(opts.target.port), opts.dir];
  let child;
  try {
    child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", logFd], detached: true });
  } finally {
    closeSync(logFd);
  }
  child.unref();
  let exited: string | undefined;
  child.once("exit", (code) => (exited = `it exited with status ${code}`));
  child.once("error", (err) => (exited = err.message));
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      /* gone */
    }
  };
  const serve = async (nsInit: number, timeoutMs = 10_000): Promise<number> => {
    const where = formatAddress(opts.listen);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        if (exited) return reject(new Error(exited));
        let out = "";
        const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /listening (\d+)\n/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`it exited with status ${code}`))));
        child.stdin!.end(`${nsInit}\n`);
      });
      child.stdout!.destroy();
      return port;
    } catch (err) {
      kill();
      const said = tail(await readFile(log, "utf8").catch(() => ""), 3);
      const inUse = /EADDRINUSE/.test(said);
      const message = `cannot publish the instance at ${where}: ${said || (err as Error).message}`;
      throw new StasisError(inUse ? "E_ADDRESS_IN_USE" : "E_IO", message, {
        hint: inUse ? "pick another --publish address, or leave out the port (stasis picks a free one)" : `see ${log}`,
        cause: err,
      });
    }
  };
  return { pid: child.pid!, serve, kill };
}
