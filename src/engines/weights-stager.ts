import { spawn } from "node:child_process";
import { join } from "node:path";
import { z } from "zod";
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
  /** Ends the stager (a no-op once it has handed the memory over and exited). */
  stop(): void;
}

/** What capture records of an engine that can adopt staged weights (the reference engine's layout says it). */
export const StageInfo = z.object({
  python: z.string().min(1),
  /** The folder holding the stasis_engine package, for PYTHONPATH. */
  path: z.string(),
  arenaSize: z.number().int().positive(),
  tensors: z.array(
    z.object({ name: z.string(), offset: z.number().int().nonnegative(), nbytes: z.number().int().nonnegative(), dtype: z.string().optional(), shape: z.array(z.number().int()).optional() }),
  ),
});
export type StageInfo = z.infer<typeof StageInfo>;

const StagerLine = z.discriminatedUnion("event", [
  z.object({ event: z.literal("ready"), bytes: z.number(), seconds: z.number(), load: z.record(z.unknown()).optional() }),
  z.object({ event: z.literal("handed-off"), seconds: z.number() }),
  z.object({ event: z.literal("error"), error: z.object({ code: z.string(), message: z.string(), hint: z.string().nullish() }) }),
]);

export interface StageJob {
  info: StageInfo;
  weightsFile: string;
  /** The GPU (UUID) the engine is restored onto. */
  gpu: string;
  /** Where the stager listens (the instance's folder). */
  dir: string;
  /** GPU memory to leave free for the CUDA restore running at the same time. */
  reserveBytes: number;
  events: Events;
}

/** Starts the stager; its fill is the phase "stage-weights" (bytes: the weights), running beside the restore. */
export function stageWeights(job: StageJob): StagedWeights {
  const socket = join(job.dir, "weights-stage.sock");
  const child = spawn(job.info.python, ["-m", "stasis_engine.weights.stage"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PYTHONPATH: [job.info.path, process.env.PYTHONPATH].filter(Boolean).join(":") },
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const lines: z.infer<typeof StagerLine>[] = [];
  let waiting: (() => void) | undefined;
  let buf = "";
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const parsed = StagerLine.safeParse(safeJson(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
      if (parsed.success) lines.push(parsed.data);
      waiting?.();
    }
  });
  const exited = new Promise<string>((resolve) => {
    child.on("error", (e) => resolve(`cannot start ${job.info.python}: ${e.message}`));
    child.on("exit", (code, signal) => resolve(`the stager exited (${signal ?? `status ${code}`})${stderr ? `: ${stderr.trim().split("\n").pop()}` : ""}`));
  });
  child.stdin.on("error", () => undefined);
  child.stdin.end(
    JSON.stringify({
      file: job.weightsFile,
      gpu: job.gpu,
      socket,
      arena_size: job.info.arenaSize,
      tensors: job.info.tensors,
      reserve_bytes: job.reserveBytes,
    }),
  );
  const outcome = job.events.phase(
    "stage-weights",
    async (): Promise<{ socket: string; bytes: number; load?: Record<string, unknown> } | { reason: string }> => {
      let exit: string | undefined;
      void exited.then((why) => {
        exit = why;
        waiting?.();
      });
      for (;;) {
        const ready = lines.find((l) => l.event === "ready");
        if (ready && ready.event === "ready") return { socket, bytes: ready.bytes, ...(ready.load ? { load: ready.load } : {}) };
        const error = lines.find((l) => l.event === "error");
        if (error && error.event === "error") return { reason: `${error.error.code}: ${error.error.message}` };
        if (exit !== undefined) return { reason: exit };
        await new Promise<void>((resolve) => (waiting = resolve));
      }
    },
    (r) => ("socket" in r ? { bytes: r.bytes, detail: { load: r.load } } : { detail: { skipped: r.reason } }),
  );
  return {
    ready: async () => {
      const r = await outcome;
      return "socket" in r ? { socket: r.socket } : r;
    },
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
