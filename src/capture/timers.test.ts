import { test } from "node:test";
import assert from "node:assert/strict";
import { describeTimers } from "./timers.js";

test("the capture's note names each periodic timer and its period", () => {
  const line = describeTimers([{ pid: 7, fd: 5, clockid: 1, valueNs: 1, intervalNs: 50_000_000 }]);
  assert.match(line, /^1 periodic timerfd\(s\) in the server \(pid 7 fd 5 every 50 ms\): CRIU restores one/);
});
