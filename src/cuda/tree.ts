import { readFile } from "node:fs/promises";
import { StasisError, asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { CudaDriver } from "./driver.js";

/** The part of CudaDriver the tree operations use; tests substitute a fake to drive the unwinding logic. */
export type Driver = Pick<CudaDriver, "call" | "state" | "gpuMemoryByPid">;

export interface CudaProcess {
  /** Host pid now. */
  pid: number;
  /** Pid inside the instance's PID namespace: stable across restores, so it names the process in a snapshot. */
  nsPid: number;
  /** GPU memory the process held when last measured (bytes), and on which GPUs. */
  gpuBytes: number;
  gpuUuids: string[];
}

/** Processes of `pids` that have libcuda mapped: candidates for the checkpoint API. */
export async function cudaCandidates(pids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const pid of pids) {
    const maps = await readFile(`/proc/${pid}/maps`, "utf8").catch(() => "");
    if (/\/libcuda\.so/.test(maps)) out.push(pid);
  }
  return out;
}

/** The pid of `pid` in its innermost PID namespace (last field of NSpid in /proc/<pid>/status). */
export async function nsPidOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const fields = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
  return fields ? Number(fields[fields.length - 1]) : pid;
}

/**
 * Of the candidates, those the driver knows as CUDA processes (a process can map libcuda without ever
 * creating a context; the driver then answers an error, and the process needs no GPU checkpoint).
 */
export async function cudaProcesses(driver: Driver, pids: number[]): Promise<CudaProcess[]> {
  const candidates = await cudaCandidates(pids);
  if (candidates.length === 0) return [];
  const mem = await driver.gpuMemoryByPid();
  const out: CudaProcess[] = [];
  for (const pid of candidates) {
    try {
      const state = await driver.state(pid);
      if (state !== "running") {
        throw new StasisError("E_CUDA", `process ${pid} is in CUDA state "${state}", expected "running"`, {
          hint: "another checkpoint may be in progress on it",
        });
      }
    } catch (err) {
      if (
        err instanceof StasisError &&
        err.code === "E_CUDA" &&
        /NOT_INITIALIZED|INVALID_VALUE|NOT_FOUND/.test(err.message)
      )
        continue;
      throw err;
    }
    const m = mem.get(pid);
    out.push({ pid, nsPid: await nsPidOf(pid), gpuBytes: m?.bytes ?? 0, gpuUuids: m?.uuids ?? [] });
  }
  return out;
}

/**
 * Locks and checkpoints every CUDA process of a tree (each step in parallel across processes): afterwards all
 * their GPU memory is in their host memory and the GPU is released, so CRIU can dump them. If any step fails,
 * what was done is undone (checkpointed processes restored, locked ones unlocked), and the error names the
 * process and the call.
 */
export async function checkpointAll(
  driver: Driver,
  procs: CudaProcess[],
  events: Events,
  lockTimeoutMs = 30_000,
): Promise<void> {
  const locked: CudaProcess[] = [];
  const checkpointed: CudaProcess[] = [];
  try {
    await events.phase("cuda-lock", () =>
      Promise.all(
        procs.map(async (p) => {
          await driver.call("lock", { pid: p.pid, timeoutMs: lockTimeoutMs });
          locked.push(p);
        }),
      ),
    );
    await events.phase(
      "cuda-checkpoint",
      () =>
        Promise.all(
          procs.map(async (p) => {
            await driver.call("checkpoint", { pid: p.pid });
            checkpointed.push(p);
          }),
        ),
      () => ({ bytes: procs.reduce((a, p) => a + p.gpuBytes, 0), detail: { processes: procs.length } }),
    );
  } catch (err) {
    const unwind = await undo(driver, checkpointed, locked);
    const e = asStasisError(err);
    throw new StasisError(e.code, `${e.message}${unwind.length ? `; while undoing: ${unwind.join("; ")}` : ""}`, {
      hint: e.hint,
      cause: err,
      details: e.details,
    });
  }
}

async function undo(driver: Driver, checkpointed: CudaProcess[], locked: CudaProcess[]): Promise<string[]> {
  const problems: string[] = [];
  for (const p of checkpointed) {
    await driver.call("restore", { pid: p.pid }).catch((e: Error) => problems.push(e.message));
  }
  for (const p of locked) {
    await driver.call("unlock", { pid: p.pid }).catch((e: Error) => problems.push(e.message));
  }
  return problems;
}

/**
 * Restores (optionally onto other GPUs) and unlocks every CUDA process of a restored tree. `procs` carry the
 * host pids of the restored processes. On failure the error names the process and the call; the caller kills
 * the tree (a process left checkpointed or locked cannot serve).
 */
export async function restoreAll(
  driver: Driver,
  procs: { pid: number; gpuBytes: number }[],
  events: Events,
  gpuPairs?: { from: string; to: string }[],
): Promise<void> {
  await events.phase(
    "cuda-restore",
    () => Promise.all(procs.map((p) => driver.call("restore", { pid: p.pid, gpuPairs }))),
    () => ({ bytes: procs.reduce((a, p) => a + p.gpuBytes, 0), detail: { processes: procs.length } }),
  );
  await events.phase("cuda-unlock", () => Promise.all(procs.map((p) => driver.call("unlock", { pid: p.pid }))));
}
