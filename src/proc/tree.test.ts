import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { parseStat, processTree } from "./tree.js";
import { until } from "../testing/wait.js";

test("/proc/<pid>/stat parses even when the command name holds spaces and parentheses", () => {
  const s = parseStat("1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0");
  assert.deepEqual(s, { comm: "my (odd) name", state: "S", ppid: 1, startTime: 98765 });
});

test("the process tree lists a child under its parent", async () => {
  const child = spawn("sleep", ["5"]);
  try {
    // comm is the parent's until the child has exec'd sleep.
    const listed = async () =>
      (await processTree(process.pid)).some((p) => p.pid === child.pid && p.ppid === process.pid && p.comm === "sleep");
    await until("the child listed under this process as sleep", listed);
    assert.equal((await processTree(process.pid))[0]!.pid, process.pid);
  } finally {
    child.kill();
  }
});

test("the process tree finds a child forked by any thread of a process with many", async () => {
  // 60 threads; the child is forked by the last one started, not the main thread: /proc lists it under that thread.
  const py = [
    "import os, threading, time, sys",
    "for _ in range(60): threading.Thread(target=time.sleep, args=(30,), daemon=True).start()",
    "def fork():",
    "    pid = os.fork()",
    "    if pid == 0: time.sleep(30); os._exit(0)",
    "    print(pid, flush=True)",
    "threading.Thread(target=fork).start()",
    "time.sleep(30)",
  ].join("\n");
  const parent = spawn("python3", ["-c", py], { stdio: ["ignore", "pipe", "inherit"] });
  let kid = 0;
  try {
    kid = Number(await new Promise<string>((r) => parent.stdout.once("data", (d: Buffer) => r(d.toString()))));
    const tree = await processTree(parent.pid!);
    assert.deepEqual(
      tree.map((p) => p.pid),
      [parent.pid, kid],
    );
  } finally {
    parent.kill("SIGKILL");
    if (kid > 0) process.kill(kid, "SIGKILL");
  }
});
