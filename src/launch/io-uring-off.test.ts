import { test } from "node:test";
import assert from "node:assert/strict";
import { SHIM, filterPython, withIoUringOff } from "./io-uring-off.js";

const PATH = process.env.PATH ?? "";

test("withIoUringOff: a command found runs under the filter's shim, with its arguments as they were", () => {
  const argv = withIoUringOff(["sh", "-c", "echo hi"], "/", true, { PATH });
  assert.match(argv[0]!, /\/python3$/);
  assert.deepEqual(argv.slice(1), ["-I", "-S", "-c", SHIM, "sh", "-c", "echo hi"]);
  // A path relative to the server's folder counts as found where it is executable there.
  assert.equal(withIoUringOff(["./sh"], "/bin", true, { PATH }).at(-1), "./sh");
  assert.equal(withIoUringOff(["./sh"], "/bin", true, { PATH }).length, 6);
});

test("withIoUringOff: unchanged when turned off, for a command that cannot be found, and without python3", () => {
  assert.deepEqual(withIoUringOff(["sh"], "/", false, { PATH }), ["sh"]);
  assert.deepEqual(withIoUringOff(["no-such-command-stasis"], "/", true, { PATH }), ["no-such-command-stasis"]);
  assert.deepEqual(withIoUringOff(["./no-such-file"], "/", true, { PATH }), ["./no-such-file"]);
  assert.deepEqual(withIoUringOff(["/bin/sh"], "/", true, { PATH: "/nonexistent" }), ["/bin/sh"]);
});

test("filterPython: the python3 on the PATH, none when turned off or when there is none", () => {
  assert.match(filterPython(true, { PATH }) ?? "", /\/python3$/);
  assert.equal(filterPython(false, { PATH }), undefined);
  assert.equal(filterPython(true, { PATH: "/nonexistent" }), undefined);
});
