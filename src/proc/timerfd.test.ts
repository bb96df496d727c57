import { test } from "node:test";
import assert from "node:assert/strict";
import { parseTimerFdinfo } from "./timerfd.js";

const FDINFO = [
  "pos:\t0",
  "flags:\t02",
  "mnt_id:\t17",
  "ino:\t1039",
  "clockid: 1",
  "ticks: 0",
  "settime flags: 00",
  "it_value: (0, 25349978)",
  "it_interval: (0, 50000000)",
  "",
].join("\n");

test("a timerfd's fdinfo gives its clock, time to expiry, period and pending expiries", () => {
  assert.deepEqual(parseTimerFdinfo(FDINFO), { clockid: 1, valueNs: 25_349_978, intervalNs: 50_000_000, ticks: 0 });
  const slow = FDINFO.replace("it_interval: (0, 50000000)", "it_interval: (2, 5)").replace("ticks: 0", "ticks: 3");
  assert.deepEqual(parseTimerFdinfo(slow), { clockid: 1, valueNs: 25_349_978, intervalNs: 2_000_000_005, ticks: 3 });
  assert.equal(parseTimerFdinfo("pos:\t0\nflags:\t02\n"), undefined, "not a timerfd's");
});
