import { test } from "node:test";
import assert from "node:assert/strict";
import { slices } from "./disk.js";

test("the files are cut into about as many equal slices as streams, never across a file; small files go together", () => {
  const cut = slices([{ path: "a", size: 10 }, { path: "b", size: 25 }, { path: "c", size: 0 }], 7); // 5 bytes each
  assert.deepEqual(cut.slices.map((x) => `${x.path}:${x.offset}+${x.length}`), ["a:0+5", "a:5+5", "b:0+5", "b:5+5", "b:10+5", "b:15+5", "b:20+5"]);
  assert.deepEqual(cut.small, []);
  const mixed = slices([{ path: "big", size: 1000 }, { path: "tiny1", size: 10 }, { path: "tiny2", size: 20 }], 4);
  assert.deepEqual(mixed.small, ["tiny1", "tiny2"], "under a quarter of a slice: read by one extra stream");
  assert.equal(mixed.slices.reduce((n, x) => n + x.length, 0), 1000, "every byte of the big file once");
  assert.ok(mixed.slices.every((x) => x.path === "big"));
});

test("what the disks read comes from /proc/diskstats' sectors, of the named devices only (no partitions, loops or zram twice)", async () => {
  const { sectorsRead } = await import("./system.js");
  const stats = [
    "   7       0 loop0 10 0 800 5 0 0 0 0 0 10 5 0 0 0 0 0 0",
    " 254       0 vda 14330 3012 2871664 9111 500 200 9000 300 0 9000 9500 0 0 0 0 0 0",
    " 254       1 vda1 14000 3000 2800000 9000 500 200 9000 300 0 9000 9500 0 0 0 0 0 0",
    " 259       0 nvme0n1 100 0 2048 10 0 0 0 0 0 10 10 0 0 0 0 0 0",
    " 252       0 zram0 5 0 40 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
  ].join("\n");
  assert.equal(sectorsRead(stats, ["vda", "nvme0n1"]), (2871664 + 2048) * 512);
  assert.equal(sectorsRead(stats, ["sda"]), undefined, "no such disk: nothing to say");
  const { diskBytesRead } = await import("./system.js");
  const now = await diskBytesRead();
  assert.ok(now === undefined || (Number.isFinite(now) && now >= 0));
});
