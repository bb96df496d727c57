import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { continueTree, stopTree } from "./freeze.js";
import { childrenOf, readStat } from "./tree.js";
import { until } from "../testing/wait.js";

test("stopTree stops a parent and its child (state T); continueTree lets them run again", async () => {
  // sh with a child sleep: a tree of two.
  const sh = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" });
  try {
    let child = 0;
    await until("the shell to start its child", () => (child = childrenOf(sh.pid!)[0] ?? 0) > 0);
    const stopped = await stopTree(sh.pid!);
    assert.deepEqual(stopped.sort(), [sh.pid!, child].sort());
    assert.equal((await readStat(sh.pid!))?.state, "T");
    assert.equal((await readStat(child))?.state, "T");
    await continueTree(sh.pid!);
    await until("the child to leave state T", async () => (await readStat(child))?.state !== "T");
    assert.equal((await readStat(child))?.state, "S");
  } finally {
    // The sleep is the shell's child: ended with it by its pid, not left for 30 s.
    for (const c of childrenOf(sh.pid!)) process.kill(c, "SIGKILL");
    sh.kill("SIGKILL");
  }
});
