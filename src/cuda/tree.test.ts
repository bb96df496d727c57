import { test } from "node:test";
import assert from "node:assert/strict";
import { checkpointAll, restoreAll, type Driver, type CudaProcess } from "./tree.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import type { Op, OpArgs } from "./_protocol.js";

/** A driver that follows the CUDA process state machine and fails the calls it is told to. */
function fakeDriver(failOn: { op: Op; pid: number }[] = []) {
  const state = new Map<number, string>();
  const calls: string[] = [];
  const driver: Driver = {
    async call<O extends Op>(op: O, args: OpArgs[O]) {
      const pid = (args as { pid: number }).pid;
      calls.push(`${op} ${pid}`);
      if (failOn.some((f) => f.op === op && f.pid === pid)) {
        throw new StasisError("E_CUDA", `cuCheckpointProcess${op} of process ${pid} failed: CUDA_ERROR_ILLEGAL_STATE`);
      }
      const s = state.get(pid) ?? "running";
      const next: Record<string, [string, string]> = {
        lock: ["running", "locked"],
        checkpoint: ["locked", "checkpointed"],
        restore: ["checkpointed", "locked"],
        unlock: ["locked", "running"],
      };
      const t = next[op];
      if (t) {
        assert.equal(s, t[0], `${op} of ${pid} in state ${s}`);
        state.set(pid, t[1]);
      }
      return { result: undefined, ms: 1 };
    },
    async state(pid: number) {
      return (state.get(pid) ?? "running") as never;
    },
    async gpuMemoryByPid() {
      return new Map();
    },
  };
  return { driver, state, calls };
}

const procs: CudaProcess[] = [
  { pid: 10, nsPid: 2, gpuBytes: 1e9, gpuUuids: ["GPU-a"] },
  { pid: 11, nsPid: 3, gpuBytes: 3e9, gpuUuids: ["GPU-a"] },
];

test("every process is locked, then checkpointed; restore and unlock bring all back to running", async () => {
  const { driver, state } = fakeDriver();
  const events = new Events();
  const phases: string[] = [];
  events.on((e) => e.type === "phase-end" && phases.push(`${e.phase}${e.bytes ? ` ${e.bytes}` : ""}`));
  await checkpointAll(driver, procs, events);
  assert.deepEqual([...state.values()], ["checkpointed", "checkpointed"]);
  await restoreAll(driver, procs, events);
  assert.deepEqual([...state.values()], ["running", "running"]);
  assert.deepEqual(phases, ["cuda-lock", "cuda-checkpoint 4000000000", "cuda-restore 4000000000", "cuda-unlock"]);
});

test("a failed lock unlocks the processes already locked, and names the process and the call", async () => {
  const { driver, state } = fakeDriver([{ op: "lock", pid: 11 }]);
  await assert.rejects(
    checkpointAll(driver, procs, new Events()),
    (e: StasisError) => e.code === "E_CUDA" && /process 11/.test(e.message) && /lock/.test(e.message),
  );
  assert.deepEqual([state.get(10), state.get(11)], ["running", undefined]);
});

test("a failed checkpoint restores the checkpointed ones and unlocks everything", async () => {
  const { driver, state } = fakeDriver([{ op: "checkpoint", pid: 10 }]);
  await assert.rejects(checkpointAll(driver, procs, new Events()), /process 10/);
  assert.deepEqual([state.get(10), state.get(11)], ["running", "running"]);
});

test("problems while undoing are reported with the original error", async () => {
  const { driver } = fakeDriver([
    { op: "checkpoint", pid: 10 },
    { op: "unlock", pid: 11 },
  ]);
  await assert.rejects(
    checkpointAll(driver, procs, new Events()),
    (e: StasisError) => /process 10/.test(e.message) && /while undoing: .*process 11/.test(e.message),
  );
});
