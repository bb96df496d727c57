/**
 * `stasis serve`: stasis resident on a unix socket, so that a restore starts with its code loaded instead of
 * paying Node's start-up and module loading each time (why: docs/decisions/0010-serve-daemon.md), and a controller
 * (an autoscaler, a node agent) can list, stop, capture and restore over HTTP without a CLI process for each. The
 * CLI's `restore`, `capture`, `ps` and `stop` go through it whenever it answers (see client.ts); the work is the
 * same functions. Routes: api.ts (docs/api.md). The socket is root's alone (0600): whoever can use it can restore
 * any snapshot and capture any command; on TCP (`--listen`) a bearer token stands in for that (auth.ts).
 */
import { request as httpRequest } from "node:http";
import { chmod, lstat, unlink } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { StasisError, asStasisError } from "../errors.js";
import { ParkedPool } from "./parked.js";
import { parkedOps } from "./parked-ops.js";
import { Events } from "../events.js";
import { paths } from "../home.js";
import { CudaDriver } from "../cuda/driver.js";
import { warmCudaWorker } from "./warm-cuda.js";
import { engineFor } from "../engines/engines.js";
import { DEFAULT_PINNED_IMAGES, weightsKeepers } from "../engines/weights-keepers.js";
import { prepareHome } from "../store/home-guard.js";
import { ownCudaDriver } from "../restore/restore.js";
import { listInstances } from "../instances/instances.js";
import { buildApp, type DaemonContext } from "./routes.js";
import { DaemonMetrics } from "./metrics.js";
import type { Settings } from "../config/config.js";
import type { DaemonLog } from "./log.js";
import type { TcpListen } from "./auth.js";

export { MAX_BODY_BYTES } from "./routes.js";

export interface ServeOptions {
  socket?: string;
  signal?: AbortSignal;
  /** Keep the weights of the snapshots restored in pinned host memory, and a stager warm (weights-keepers.ts). */
  pinWeights?: boolean;
  /** Weights images each keeper keeps pinned, the least recently used freed (default 2). */
  pinWeightsMax?: number;
  /** Also serve the API on TCP; every request there must carry `token` (auth.ts). */
  tcp?: TcpListen & { token: string };
  /** Where requests and the operations' events are logged (log.ts); the daemon's own lines go to `events` too. */
  log?: DaemonLog;
  /** Snapshots to keep one instance of parked from the start (docs/parking.md), as `stasis park NAME` would. */
  park?: string[];
  /** Called once every listener is up, with where (a TCP port of 0 is the one picked). */
  onListening?: (where: { socket: string; tcp?: { host: string; port: number } }) => void;
  /** Keep one CUDA worker warm for all restores (warm-cuda.ts) instead of one per restore. */
  warmCuda?: boolean;
  /** The daemon's own settings, read where it started; a request's knobs are laid over them for that request. */
  settings: Settings;
}

export interface ServeResult {
  socket: string;
  tcp?: { host: string; port: number };
  restores: number;
  captures: number;
}

/** Serves until `signal` fires; then stops taking requests, lets running ones finish and removes the socket. */
export async function serve(opts: ServeOptions, events: Events): Promise<ServeResult> {
  if (opts.tcp && !opts.tcp.token) {
    throw new StasisError("E_USAGE", "the daemon is not served on TCP without a token", {
      hint: "give --token-file with --listen",
    });
  }
  await prepareHome((m) => events.log(m, "warn"));
  const socket = opts.socket ?? paths.daemonSocket();
  await claimSocket(socket);
  // Opt-in (--warm-cuda) until it has been measured on a GPU: otherwise each restore starts its own worker, as
  // in-process restores do, off the critical path beside CRIU.
  const cuda = opts.warmCuda
    ? warmCudaWorker(
        () => CudaDriver.start(),
        (m) => events.log(m),
      )
    : { lease: ownCudaDriver, close: async () => {} };
  // A restore loads its engine's adapter on first use (engines.ts); the daemon's first restore finds it loaded.
  await engineFor("vllm");
  const keepers = opts.pinWeights
    ? weightsKeepers((m, level) => events.log(m, level), opts.pinWeightsMax ?? DEFAULT_PINNED_IMAGES)
    : undefined;
  const log: DaemonLog = opts.log ?? { event: () => undefined, request: () => undefined };
  const ctx: DaemonContext = {
    events,
    log,
    cuda,
    settings: opts.settings,
    ...(keepers ? { keepers } : {}),
    metrics: new DaemonMetrics({ instances: () => listInstances(), pinnedBytes: () => keepers?.pinnedBytes() ?? 0 }),
    counts: { requests: 0, restores: 0, captures: 0 },
    pool: new ParkedPool(parkedOps(events, opts.settings.config, { cudaDriver: cuda.lease })),
  };
  const offLog = events.on((e) => log.event(e));
  const unix = buildApp(ctx, "unix");
  const tcp = opts.tcp ? buildApp(ctx, "tcp", opts.tcp.token) : undefined;
  let tcpAt: { host: string; port: number } | undefined;
  try {
    // The socket is bound under umask 077: root's alone from its first moment, not only after the chmod (a --socket
    // outside STASIS_HOME would otherwise be open to anyone for that moment). fastify binds a few ticks into
    // listen(), so the umask spans it; nothing else of the daemon runs yet.
    const umask = process.umask(0o077);
    try {
      await unix.listen({ path: socket });
    } finally {
      process.umask(umask);
    }
    await chmod(socket, 0o600);
    events.log(`stasis serve: listening on ${socket} (pid ${process.pid})`);
    if (tcp && opts.tcp) {
      await tcp.listen({ host: opts.tcp.host, port: opts.tcp.port }).catch((err: NodeJS.ErrnoException) => {
        throw new StasisError(
          err.code === "EADDRINUSE" ? "E_ADDRESS_IN_USE" : "E_USAGE",
          `cannot listen on ${opts.tcp!.host}:${opts.tcp!.port}: ${err.message}`,
          {
            hint: "give --listen another address or port",
            cause: err,
          },
        );
      });
      const a = tcp.server.address() as AddressInfo;
      tcpAt = { host: a.address, port: a.port };
      events.log(
        `stasis serve: listening on tcp ${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port} (bearer token required)`,
      );
    }
    for (const name of opts.park ?? []) {
      ctx.pool
        .setTarget(name, 1)
        .catch((err) => events.log(`could not park "${name}": ${asStasisError(err).message}`, "warn"));
    }
    opts.onListening?.({ socket, ...(tcpAt ? { tcp: tcpAt } : {}) });
    await new Promise<void>((resolve) => {
      if (opts.signal?.aborted) return resolve();
      opts.signal?.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    // Requests in flight (a restore half-way) finish first: close() waits for them.
    await Promise.all([unix.close(), tcp?.close()]);
    await unlink(socket).catch(() => undefined);
    // Invariant: a daemon that exits leaves no parked tree (each would hold memory and an address for nobody).
    await ctx.pool.close();
    await cuda.close();
    await keepers?.close();
    offLog();
  }
  return { socket, ...(tcpAt ? { tcp: tcpAt } : {}), restores: ctx.counts.restores, captures: ctx.counts.captures };
}

/**
 * The socket path is ours if nothing is there, or a socket no daemon answers on (one that died), which is removed.
 * Anything else at that path (a file, a folder, a symlink) is refused, never removed: `--socket` names where to
 * listen, not what may be deleted.
 */
async function claimSocket(socket: string): Promise<void> {
  const st = await lstat(socket).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new StasisError("E_USAGE", `cannot listen on ${socket}: ${err.message}`, {
      hint: "give --socket a path in a folder that exists",
    });
  });
  if (!st) return;
  if (!st.isSocket()) {
    const kind = st.isSymbolicLink() ? "a symlink" : st.isDirectory() ? "a folder" : st.isFile() ? "a file" : "not one";
    const message = `cannot listen on ${socket}: it is ${kind}, and stasis serve only replaces a stale socket`;
    throw new StasisError("E_USAGE", message, {
      hint: "give --socket a path where nothing is yet (default $STASIS_HOME/stasisd.sock)",
      details: { socket },
    });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const req = httpRequest({ socketPath: socket, agent: false, path: "/v1/health", timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
  if (alive) {
    throw new StasisError("E_DAEMON", `a stasis daemon already serves ${socket}`, {
      hint: "stop it first (it exits on SIGINT or SIGTERM), or give --socket another path",
    });
  }
  await unlink(socket).catch(() => undefined);
}
