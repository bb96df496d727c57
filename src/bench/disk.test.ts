import { test } from "node:test";
import assert from "node:assert/strict";
import { slices } from "./disk.js";

test("the files are cut into about as many equal slices as streams, never across a file; small files go together", () => {
  const cut = slices(
    [
      { path: "a", size: 10 },
      { path: "b", size: 25 },
      { path: "c", size: 0 },
    ],
    7,
  ); // 5 bytes each
  assert.deepEqual(
    cut.slices.map((x) => `${x.path}:${x.offset}+${x.length}`),
    ["a:0+5", "a:5+5", "b:0+5", "b:5+5", "b:10+5", "b:15+5", "b:20+5"],
  );
  assert.deepEqual(cut.small, []);
  const mixed = slices(
    [
      { path: "big", size: 1000 },
      { path: "tiny1", size: 10 },
      { path: "tiny2", size: 20 },
    ],
    4,
  );
  assert.deepEqual(mixed.small, ["tiny1", "tiny2"], "under a quarter of a slice: read by one extra stream");
  assert.equal(
    mixed.slices.reduce((n, x) => n + x.length, 0),
    1000,
    "every byte of the big file once",
  );
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

test("the disks' samples become windows: rate, reads, their mean size and what was in flight", async () => {
  const { diskWindows } = await import("./report.js");
  const mb = 1e6;
  const samples = [0, 100, 200, 300, 400, 500, 600, 700].map((ms, k) => ({
    ms,
    bytes: k <= 5 ? k * 100 * mb : 500 * mb,
    reads: k <= 5 ? k * 100 : 500,
    inFlight: k <= 5 ? 8 : 0,
  }));
  const w = diskWindows(samples, 500);
  assert.equal(w.length, 2);
  assert.deepEqual([w[0]!.fromMs, w[1]!.fromMs], [0, 500]);
  assert.ok(Math.abs(w[0]!.gbps - 1) < 1e-9, "500 MB in 500 ms");
  assert.equal(w[0]!.reads, 500);
  assert.ok(Math.abs(w[0]!.meanReadKiB - 1e6 / 1024) < 1e-6, "1 MB a read");
  assert.equal(w[0]!.inFlight, 8);
  assert.deepEqual([w[1]!.gbps, w[1]!.reads, w[1]!.meanReadKiB, w[1]!.inFlight], [0, 0, 0, 0], "idle after");
  assert.deepEqual(diskWindows(samples.slice(0, 1), 500), [], "one sample: no window");
});

test("the disk sampler reads /proc/diskstats until stopped, and a second stop changes nothing", async () => {
  const { sampleDisk } = await import("./system.js");
  const s = sampleDisk(20);
  await new Promise((r) => setTimeout(r, 300)); // a loaded machine's timers fire late: room for 3 of 15
  const got = await s.stop();
  const again = await s.stop();
  assert.equal(again, got);
  const n = got.length;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(got.length, n, "nothing added after stop");
  // A machine without disks in /sys/block gives none; one with them gives readings from the first on.
  if (n > 0) {
    assert.ok(n >= 3, `sampled every 20 ms for 300 ms: ${n}`);
    assert.deepEqual([got[0]!.bytes, got[0]!.reads], [0, 0], "counted from the first reading");
    assert.ok(got.every((x, k) => k === 0 || (x.ms >= got[k - 1]!.ms && x.bytes >= got[k - 1]!.bytes)));
  }
});
