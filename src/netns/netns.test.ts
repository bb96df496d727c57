import { test } from "node:test";
import assert from "node:assert/strict";
import { readlinkSync } from "node:fs";
import { resolveNetns } from "./netns.js";
import { StasisError } from "../errors.js";

const usage = (pattern: RegExp) => (e: unknown) =>
  e instanceof StasisError && e.code === "E_USAGE" && pattern.test(e.message);

test("--netns PID and net:[INODE] name this process's namespace", async () => {
  const own = readlinkSync("/proc/self/ns/net");
  assert.deepEqual(await resolveNetns(String(process.pid)), { path: `/proc/${process.pid}/ns/net`, id: own });
  const byId = await resolveNetns(own);
  assert.equal(byId.id, own);
  assert.equal(readlinkSync(byId.path), own);
});

test("--netns refuses a plain file, a relative path, a gone process, an unknown namespace", async () => {
  await assert.rejects(resolveNetns("/etc/hostname"), usage(/not a namespace file/));
  await assert.rejects(resolveNetns("netns/x"), usage(/neither a process id nor an absolute path/));
  await assert.rejects(resolveNetns("999999999"), usage(/no process 999999999/));
  await assert.rejects(resolveNetns("net:[1]"), usage(/no process here is in that network namespace/));
});
