import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMaps, readMaps } from "./maps.js";

test("file mappings of /proc/PID/maps: addresses, offset and inode in numbers, a deleted file marked, anonymous memory left out", () => {
  const text = [
    "55d0c0a00000-55d0c0a2a000 r--p 00000000 fe:00 1234                       /usr/bin/python3.11",
    "7f2c0fa00000-7f2c11ff9000 r-xp 00001000 fe:00 5334319                    /opt/lib/lib with space.so",
    "7f2c66417000-7f2c6641a000 rw-p 00000000 00:00 0 ",
    "7f2c66600000-7f2c6661f000 rw-s 00000000 00:1b 99                         /dev/shm/sem.abc (deleted)",
    "7ffd1c5e2000-7ffd1c603000 rw-p 00000000 00:00 0                          [stack]",
  ].join("\n");
  assert.deepEqual(parseMaps(text), [
    { start: 0x55d0c0a00000, end: 0x55d0c0a2a000, offset: 0, inode: 1234, path: "/usr/bin/python3.11", deleted: false },
    {
      start: 0x7f2c0fa00000,
      end: 0x7f2c11ff9000,
      offset: 0x1000,
      inode: 5334319,
      path: "/opt/lib/lib with space.so",
      deleted: false,
    },
    { start: 0x7f2c66600000, end: 0x7f2c6661f000, offset: 0, inode: 99, path: "/dev/shm/sem.abc", deleted: true },
  ]);
});

test("this process maps its own executable", async () => {
  assert.ok((await readMaps(process.pid)).some((m) => m.path === process.execPath && !m.deleted));
  assert.deepEqual(await readMaps(2 ** 22 + 1), [], "a process that does not exist maps nothing");
});
