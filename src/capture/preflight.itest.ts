/**
 * The capture's preflight against a real process holding an io_uring instance (made with the io_uring_setup
 * system call): refused with the process's name, command line and fd.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { refuseUndumpable } from "./preflight.js";
import { StasisError } from "../errors.js";

// Makes an io_uring (x86_64: system call 425, aarch64: 425 too) and prints its fd, or "unavailable".
const MAKE_RING = [
  "import ctypes, sys, time",
  "fd = ctypes.CDLL(None, use_errno=True).syscall(425, 8, ctypes.create_string_buffer(120))",
  "print(fd if fd >= 0 else 'unavailable', flush=True)",
  "time.sleep(60)",
].join("\n");

test("a process holding an io_uring is refused, naming the process, its command line and the fd", async (t) => {
  const child = spawn("python3", ["-c", MAKE_RING, "ring-holder"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [line] = (await once(child.stdout!, "data")) as [Buffer];
    const fd = line.toString().trim();
    if (fd === "unavailable") return t.skip("io_uring is disabled here (io_uring_disabled, or a seccomp profile)");
    await assert.rejects(refuseUndumpable([process.pid, child.pid!]), (err: unknown) => {
      assert.ok(err instanceof StasisError);
      assert.equal(err.code, "E_IO_URING");
      assert.match(
        err.message,
        new RegExp(
          `^process ${child.pid} \\(python3\\) of the server holds an io_uring instance \\(fd ${fd}\\).*: \\S*python3 -c import ctypes`,
        ),
      );
      assert.match(String(err.details?.cmdline), /ring-holder$/);
      assert.deepEqual(err.details?.fds, [Number(fd)]);
      return true;
    });
  } finally {
    child.kill("SIGKILL");
  }
});

test("a tree without io_uring passes", async () => {
  const child = spawn("python3", ["-c", "import time; time.sleep(60)"], { stdio: "ignore" });
  try {
    await refuseUndumpable([child.pid!]);
  } finally {
    child.kill("SIGKILL");
  }
});
