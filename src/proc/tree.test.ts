import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { parseStat, processTree } from "./tree.js";

test("/proc/<pid>/stat parses even when the command name holds spaces and parentheses", () => {
  const s = parseStat("1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0");
  assert.deepEqual(s, { comm: "my (odd) name", state: "S", ppid: 1, startTime: 98765 });
});

test("the process tree lists a child under its parent", async () => {
  const child = spawn("sleep", ["5"]);
  try {
    await new Promise((r) => setTimeout(r, 50));
    const tree = await processTree(process.pid);
    assert.equal(tree[0]!.pid, process.pid);
    assert.ok(tree.some((p) => p.pid === child.pid && p.ppid === process.pid && p.comm === "sleep"));
  } finally {
    child.kill();
  }
});
