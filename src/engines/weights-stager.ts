import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { join } from "node:path";
import type { StageInfo } from "../contracts/engine-state.js";
import type { StagerLine, StageControl, StageJob as StageJobLine } from "../contracts/stage.js";
import type { Events } from "../events.js";

/**
 * Weights staged beside a restore: `python -m stasis_engine.weights.stage` (the engine's own interpreter)
 * creates GPU memory the size of the engine's weights arena and fills it from the weights file while CRIU and
 * the CUDA driver restore the engine; the engine then maps that memory at its arena's addresses
 * (`stasis_adopt_weights`) instead of waking empty memory and refilling it. The refill leaves the restore's path.
 *
 * Never fatal: a stager that fails, or lacks GPU memory, says why in `ready()` and the restore refills as before.
 */
export interface StagedWeights {
  /** The socket the filled memory is handed over on, or why there is none (the restore then refills). */
  ready(): Promise<{ socket: string } | { reason: string }>;
  /**
   * The restore's own reads (CRIU's images, the working set) or CRIU itself are done: a stager whose weights file is
   * not in the page cache holds its reads until this (or its wait runs out), so it does not share the disk with CRIU
   * while CRIU needs it. A no-op for one that did not hold, and after the first call.
   */
  go(): void;
  /** Ends the stager (a no-op once it has handed the memory over and exited). */
  stop(): void;
}

export type { StageInfo };

/** What a weights file is staged from: the engine's layout (capture recorded it) and the file. */
export interface StageSource {
  info: StageInfo;
  weightsFile: string;
}

/** What a keeper pins ahead of any restore: a source, on the GPU (UUID) a restore of it would use. */
export interface PinJob extends StageSource {
  gpu: string;
}

/** A keeper's answer to a pin: the image's size, how long pinning took, and whether it was pinned before. */
export interface Pinned {
  bytes: number;
  seconds: number;
  already: boolean;
}

/** A restore's staging: a source onto the GPU the engine is restored onto. */
export interface StageJob extends PinJob {
  /** Where the stager listens (the instance's folder). */
  dir: string;
  /** GPU memory to leave free for the CUDA restore running at the same time. */
  reserveBytes: number;
  events: Events;
}

/** How a restore gets its weights staged: a stager of its own (stageWeights), or a keeper's (WeightsKeeper). */
export type StageLauncher = (job: StageJob) => StagedWeights;

/**
 * `launch`, once `when` resolves: a stager takes its GPU memory as it starts, and in a swap that memory is the other
 * server's until it sleeps. Where `when` rejects, or the restore stops first, no stager starts (`ready` says why).
 */
export function launchedWhen(when: Promise<void>, launch: StageLauncher): StageLauncher {
  return (job) => {
    let stopped = false;
    const real = when.then(
      () => (stopped ? undefined : launch(job)),
      () => undefined,
    );
    return {
      ready: async () =>
        (await real)?.ready() ?? { reason: "no stager started: the GPU's memory was not freed for it" },
      go: () => void real.then((s) => s?.go()), // a go given before the launch reaches it once launched
      stop: () => {
        stopped = true;
        void real.then((s) => s?.stop());
      },
    };
  };
}

/** The layout as the stager's job says it: extents, or an arena's size and its tensors. */
function layoutFields(
  info: StageInfo,
): { extents: NonNullable<StageInfo["extents"]> } | { arena_size: number; tensors: StageInfo["tensors"] } {
  return info.extents ? { extents: info.extents } : { arena_size: info.arenaSize, tensors: info.tensors };
}

/** The job's line on the stager's stdin (contracts/stage-job.schema.json). */
export function jobLine(job: Omit<StageJob, "events">, socket: string, id?: string): string {
  const line: StageJobLine = {
    ...(id ? { id } : {}),
    file: job.weightsFile,
    gpu: job.gpu,
    socket,
    ...layoutFields(job.info),
    reserve_bytes: job.reserveBytes,
    hold: true, // Why: docs/decisions/0002-stage-hold.md (a cold file's reads wait for the restore's go)
  };
  return JSON.stringify(line);
}

/** A line on the stager's stdin other than a job (contracts/stage-control.schema.json). */
function controlLine(line: StageControl): string {
  return JSON.stringify(line) + "\n";
}

function pythonEnv(info: StageInfo): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: [info.path, process.env.PYTHONPATH].filter(Boolean).join(":") };
}

/** The lines a stager writes about one job, and why it ended if it did; read in order by `next()`. */
class JobLines {
  private readonly lines: StagerLine[] = [];
  private ended: string | undefined;
  private wake: (() => void) | undefined;
  push(line: StagerLine): void {
    this.lines.push(line);
    this.wake?.();
  }
  end(reason: string): void {
    this.ended ??= reason;
    this.wake?.();
  }
  async next(): Promise<StagerLine | { event: "ended"; reason: string }> {
    for (;;) {
      const line = this.lines.shift();
      if (line) return line;
      if (this.ended !== undefined) return { event: "ended", reason: this.ended };
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** The phase "stage-weights": from the job's start until its memory is ready (or why it is not). */
function staged(events: Events, socket: string, lines: JobLines, go: () => void, stop: () => void): StagedWeights {
  const outcome = events.phase(
    "stage-weights",
    async (): Promise<{ socket: string; bytes: number; load?: Record<string, unknown> } | { reason: string }> => {
      for (;;) {
        const l = await lines.next();
        if (l.event === "ready") return { socket, bytes: l.bytes, ...(l.load ? { load: l.load } : {}) };
        if (l.event === "error") return { reason: `${l.error.code}: ${l.error.message}` };
        if (l.event === "ended") return { reason: l.reason };
      }
    },
    (r) => ("socket" in r ? { bytes: r.bytes, detail: { load: r.load } } : { detail: { skipped: r.reason } }),
  );
  let went = false;
  return {
    ready: async () => {
      const r = await outcome;
      return "socket" in r ? { socket: r.socket } : r;
    },
    go: () => {
      if (!went) go();
      went = true;
    },
    stop,
  };
}

/** Starts a stager of the restore's own; its fill is the phase "stage-weights" (bytes: the weights). */
export function stageWeights(job: StageJob): StagedWeights {
  const socket = join(job.dir, "weights-stage.sock");
  const child = spawn(job.info.python, ["-m", "stasis_engine.weights.stage"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: pythonEnv(job.info),
  });
  const lines = new JobLines();
  follow(
    child,
    "the stager",
    (l) => lines.push(l),
    (why) => lines.end(why),
  );
  // Its stdin stays open for the go line (its end is a go too).
  child.stdin.write(jobLine(job, socket) + "\n");
  return staged(
    job.events,
    socket,
    lines,
    () => child.stdin.end(controlLine({ op: "go" })),
    () => {
      child.stdin.end();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  );
}

/**
 * `python -m stasis_engine.weights.stage --keep`, kept by `stasis serve --pin-weights`: one process per engine
 * interpreter that keeps the weights files it staged as pinned images of the engine's arena and its CUDA
 * contexts, so a later restore's weights are one host-to-GPU copy away (see Keeper in stage.py). Jobs run one at a
 * time in the order sent; a job whose restore gave up is released (its socket poked) so the next one runs. What
 * the keeper says after a job (an image pinned, or not) goes to `log`.
 */
export class WeightsKeeper {
  private readonly jobs = new Map<string, JobLines>();
  private readonly cancelled = new Set<string>();
  private readonly sockets = new Map<string, string>();
  private readonly releases = new Map<string, (images: number) => void>();
  private readonly pins = new Map<string, (answer: Pinned | Error) => void>();
  private seq = 0;
  private exited: string | undefined;
  private held = 0;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    log: (message: string, level: "info" | "warn") => void,
  ) {
    const onLine = (l: StagerLine) => {
      const id = l.id ?? "";
      if ((l.event === "pinned" || l.event === "pin-failed" || l.event === "released") && l.held !== undefined)
        this.held = l.held;
      if (l.event === "released") return this.releases.get(id)?.(l.images);
      const pinned = this.pins.get(id);
      if (pinned && l.event === "pinned")
        return pinned({ bytes: l.bytes, seconds: l.seconds, already: l.already ?? false });
      if (pinned && l.event === "pin-failed")
        return pinned(new Error(`the weights keeper could not pin the weights: ${l.message}`));
      if (pinned && l.event === "error")
        return pinned(new Error(`the weights keeper refused the pin: ${l.error.code}: ${l.error.message}`));
      if (l.event === "pinned")
        return log(
          `weights keeper: pinned ${(l.bytes / 1e9).toFixed(2)} GB of weights in ${l.seconds.toFixed(2)} s, for the next restore`,
          "info",
        );
      if (l.event === "pin-failed")
        return log(
          `weights keeper: could not pin the weights (${l.message}); the next restore reads the file again`,
          "warn",
        );
      if (l.event === "ready" && this.cancelled.has(id)) pokeSocket(this.sockets.get(id));
      this.jobs.get(id)?.push(l);
      if (l.event !== "ready") {
        this.jobs.delete(id);
        this.sockets.delete(id);
        this.cancelled.delete(id);
      }
    };
    const onEnd = (why: string) => {
      this.exited ??= why;
      for (const lines of this.jobs.values()) lines.end(why);
      this.jobs.clear();
      this.settleWaiters();
    };
    follow(child, "the weights keeper", onLine, onEnd);
    // Its output may stay open after it exits (a child of its own holding it), so not only when it closes.
    child.on("exit", () => this.settleWaiters());
  }

  /** A keeper that is gone has nothing left to free: the releases asked of it answer 0; its pins fail. */
  private settleWaiters(): void {
    for (const done of this.releases.values()) done(0);
    for (const done of this.pins.values()) done(new Error(`the weights keeper ended (${this.exited ?? "exited"})`));
  }

  /** `maxImages`: how many weights images it keeps pinned (its own default, 2, where not given). */
  static start(
    info: StageInfo,
    log: (message: string, level: "info" | "warn") => void = () => undefined,
    maxImages?: number,
  ): WeightsKeeper {
    const keep = ["--keep", ...(maxImages === undefined ? [] : ["--max-images", String(maxImages)])];
    const child = spawn(info.python, ["-m", "stasis_engine.weights.stage", ...keep], {
      stdio: ["pipe", "pipe", "pipe"],
      env: pythonEnv(info),
    });
    return new WeightsKeeper(child, log);
  }

  stage(job: StageJob): StagedWeights {
    const id = `job-${++this.seq}`;
    const socket = join(job.dir, "weights-stage.sock");
    const lines = new JobLines();
    if (this.exited !== undefined) lines.end(this.exited);
    else {
      this.jobs.set(id, lines);
      this.sockets.set(id, socket);
      this.child.stdin.write(jobLine(job, socket, id) + "\n");
    }
    const go = () => {
      if (this.alive()) this.child.stdin.write(controlLine({ op: "go", id }));
    };
    return staged(job.events, socket, lines, go, () => {
      // Not taken (the restore failed or refilled instead): make the keeper give up on it now, not after its wait
      // (a job still holding its reads gets its go first).
      if (!this.jobs.has(id)) return;
      this.cancelled.add(id);
      go();
      pokeSocket(socket);
    });
  }

  /**
   * Frees the keeper's pinned images and keeps it running, its CUDA contexts up: the next job reads its weights
   * file again but starts at once. Resolves with how many images were freed once the keeper says so (0 for a
   * keeper that has ended); rejects when it does not answer within `timeoutMs`.
   */
  release(timeoutMs = 10_000): Promise<number> {
    if (!this.alive()) return Promise.resolve(0);
    const id = `release-${++this.seq}`;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.releases.delete(id);
        reject(new Error(`the weights keeper did not release its weights within ${timeoutMs} ms`));
      }, timeoutMs);
      this.releases.set(id, (images) => {
        clearTimeout(timer);
        this.releases.delete(id);
        resolve(images);
      });
      this.child.stdin.write(controlLine({ op: "release", id }));
    });
  }

  /**
   * Pins `job`'s weights file as an image now, ahead of any restore (one already pinned is kept, and said to be):
   * the first restore of it then copies the image in instead of reading the file. Waits behind a job that is
   * running. Rejects when the keeper cannot pin (memory, a missing file), has ended, or takes over `timeoutMs`.
   */
  pin(job: PinJob, timeoutMs = 300_000): Promise<Pinned> {
    if (!this.alive()) return Promise.reject(new Error(`the weights keeper ended (${this.exited ?? "exited"})`));
    const id = `pin-${++this.seq}`;
    return new Promise<Pinned>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`the weights keeper did not pin the weights within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const settle = (answer: Pinned | Error) => {
        clearTimeout(timer);
        this.pins.delete(id);
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      };
      this.pins.set(id, settle);
      this.child.stdin.write(
        controlLine({ op: "pin", id, file: job.weightsFile, gpu: job.gpu, ...layoutFields(job.info) }),
      );
    });
  }

  /** Bytes of weights the keeper holds pinned, as it last said (0 once it has ended). */
  heldBytes(): number {
    return this.alive() ? this.held : 0;
  }

  /** False once the keeper's process has ended. */
  alive(): boolean {
    return this.exited === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Ends the keeper: its pinned images and GPU contexts go with it. Settles once its process has ended. */
  close(): Promise<void> {
    const ended = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once("exit", () => resolve());
    });
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    timer.unref();
    return ended.finally(() => clearTimeout(timer));
  }
}

/** Connects to a stager's socket and hangs up: a stager waiting there hands nothing over and moves on. */
function pokeSocket(path: string | undefined): void {
  if (!path) return;
  const s = connect(path);
  s.on("connect", () => s.destroy());
  s.on("error", () => undefined);
}

/**
 * Follows a stager process (one-shot or keeper): each answer line it writes, and once it has ended (after its
 * output is read: "close", not "exit"), why, with the last line of its standard error.
 */
function follow(
  child: ChildProcessWithoutNullStreams,
  what: string,
  onLine: (l: StagerLine) => void,
  onEnd: (why: string) => void,
): void {
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  // The contract (zod/v4) is loaded here, not with this module: a restore with nothing to stage never loads it
  // (docs/decisions/0016-restore-fixed-costs.md). Lines and the end are handled in order, once it is.
  const contract = import("../contracts/stage.js");
  let handled: Promise<void> = Promise.resolve();
  const inOrder = (f: (c: Awaited<typeof contract>) => void) =>
    (handled = handled.then(() => contract).then(f, (err: Error) => onEnd(`${what}: ${err.message}`)));
  createInterface({ input: child.stdout }).on("line", (text) =>
    inOrder(({ StagerLine }) => {
      const parsed = StagerLine.safeParse(safeJson(text));
      if (parsed.success) onLine(parsed.data);
    }),
  );
  child.on("error", (e) => inOrder(() => onEnd(`cannot start ${what}: ${e.message}`)));
  child.on("close", (code, signal) =>
    inOrder(() =>
      onEnd(`${what} exited (${signal ?? `status ${code}`})${stderr ? `: ${stderr.trim().split("\n").pop()}` : ""}`),
    ),
  );
  child.stdin.on("error", () => undefined);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
