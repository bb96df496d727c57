import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { continueTree, stopTree } from "./freeze.js";
import { childrenOf, readStat } from "./tree.js";

test("stopTree stops a parent and its child (state T); continueTree lets them run again", async () => {
  // sh with a child sleep: a tree of two.
  const sh = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" });
  try {
    let child: number | undefined;
    for (let i = 0; i < 100 && child === undefined; i++) {
      child = childrenOf(sh.pid!)[0];
      if (child === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(child, "the shell started its child");
    const stopped = await stopTree(sh.pid!);
    assert.deepEqual(stopped.sort(), [sh.pid!, child].sort());
    assert.equal((await readStat(sh.pid!))?.state, "T");
    assert.equal((await readStat(child))?.state, "T");
    await continueTree(sh.pid!);
    for (let i = 0; i < 100 && (await readStat(child))?.state === "T"; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await readStat(child))?.state, "S");
  } finally {
    // The sleep is the shell's child: ended with it by its pid, not left for 30 s.
    for (const c of childrenOf(sh.pid!)) process.kill(c, "SIGKILL");
    sh.kill("SIGKILL");
  }
});
