import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Events, recordTimeline } from "../events.js";
import { parseMaps } from "../proc/maps.js";
import {
  fileMappings,
  loadWorkingSet,
  mergeRanges,
  presentFileRanges,
  recordWorkingSet,
  saveWorkingSet,
  startWorkingSet,
  workingSetReads,
  WORKING_SET_FILE,
} from "./working-set.js";

const MAPS = [
  "55d0c0a00000-55d0c0a2a000 r--p 00000000 fe:00 1234                       /usr/bin/python3.11",
  "7f2c0fa00000-7f2c11ff9000 r-xp 00001000 fe:00 5334319                    /opt/lib/lib with space.so",
  "7f2c66417000-7f2c6641a000 rw-p 00000000 00:00 0 ",
  "7f2c66500000-7f2c66600000 rw-s 00000000 00:05 77                         /dev/zero (deleted)",
  "7f2c66600000-7f2c6661f000 r-xp 00000000 fe:00 99                         /gone.so (deleted)",
  "7f2c66700000-7f2c6671f000 rw-s 00000000 00:01 98                         /memfd:cuda (deleted)",
  "7ffd1c5e2000-7ffd1c603000 rw-p 00000000 00:00 0                          [stack]",
].join("\n");

test("file mappings are the regular files of /proc/PID/maps, spaces in names kept; anonymous, devices, deleted are not", () => {
  assert.deepEqual(fileMappings(parseMaps(MAPS)), [
    { start: 0x55d0c0a00000, end: 0x55d0c0a2a000, offset: 0, inode: 1234, path: "/usr/bin/python3.11", deleted: false },
    {
      start: 0x7f2c0fa00000,
      end: 0x7f2c11ff9000,
      offset: 0x1000,
      inode: 5334319,
      path: "/opt/lib/lib with space.so",
      deleted: false,
    },
  ]);
});

test("pagemap entries become file ranges: present pages (file pages, and private copies CRIU will write over the file's), runs joined", () => {
  const entry = (present: boolean, file: boolean, swapped = false) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(0x1234, 0); // a PFN's low bits: ignored
    b.writeUInt32LE(((present ? 0x80000000 : 0) | (swapped ? 0x40000000 : 0) | (file ? 0x20000000 : 0)) >>> 0, 4);
    return b;
  };
  const pagemap = Buffer.concat([
    entry(true, true),
    entry(true, false), // a private copy (copy-on-write): CRIU's restore reads the file's page under it
    entry(false, false),
    entry(false, true), // not present: untouched
    entry(false, false, true), // a private copy, swapped out: dumped too
    entry(true, true),
  ]);
  const mapping = { offset: 0x3000 };
  assert.deepEqual(presentFileRanges(mapping, pagemap), [
    [0x3000, 0x2000],
    [0x3000 + 4 * 4096, 0x2000],
  ]);
});

test("ranges are sorted, merged across small gaps, and clipped to the file", () => {
  assert.deepEqual(
    mergeRanges(
      [
        [8192, 4096],
        [0, 4096],
        [4096, 4096],
        [1 << 20, 4096],
      ],
      1 << 30,
      0,
    ),
    [
      [0, 12288],
      [1 << 20, 4096],
    ],
  );
  assert.deepEqual(
    mergeRanges(
      [
        [0, 4096],
        [100_000, 4096],
      ],
      1 << 30,
    ),
    [[0, 104_096]],
    "a gap under 256 KiB is read through",
  );
  assert.deepEqual(
    mergeRanges(
      [
        [0, 8192],
        [6000, 10_000],
      ],
      10_000,
    ),
    [[0, 10_000]],
  );
  assert.deepEqual(mergeRanges([[20_000, 4096]], 10_000), [], "past the end of a file that shrank");
});

test("the working set of a real process: the pages it touched of a file it maps, the head of the file, saved and read back", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ws-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // This process has node's own binary mapped and has run its code: some of its pages are present.
  const ws = await recordWorkingSet([process.pid]);
  const node = ws.files.find((f) => f.path === process.execPath);
  assert.ok(node, `${process.execPath} in ${ws.files.map((f) => f.path).join(", ")}`);
  assert.deepEqual(node.ranges[0]?.[0], 0, "the head is included");
  assert.ok(node.ranges.reduce((n, r) => n + r[1], 0) > 128 * 1024, "pages beyond the head");
  assert.equal(
    ws.bytes,
    ws.files.reduce((n, f) => n + f.ranges.reduce((m, r) => m + r[1], 0), 0),
  );
  await saveWorkingSet(dir, ws);
  assert.deepEqual(await loadWorkingSet(dir), ws);
  writeFileSync(join(dir, WORKING_SET_FILE), "{not json");
  assert.equal(await loadWorkingSet(dir), undefined, "a damaged file is no working set, not an error");
});

test("only files that are still the ones recorded are read; a changed one is skipped and counted", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ws-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, "a.so");
  const b = join(dir, "b.so");
  writeFileSync(a, Buffer.alloc(300_000, 1));
  writeFileSync(b, Buffer.alloc(300_000, 2));
  const { statSync } = await import("node:fs");
  const file = (path: string) => {
    const st = statSync(path);
    return {
      path,
      dev: String(st.dev),
      ino: String(st.ino),
      size: st.size,
      mtimeMs: st.mtimeMs,
      ranges: [
        [0, 4096],
        [200_000, 8192],
      ] as [number, number][],
    };
  };
  const ws = { version: 1 as const, recordedAt: new Date().toISOString(), bytes: 2 * 12288, files: [file(a), file(b)] };
  utimesSync(b, new Date(), new Date(Date.now() + 5_000));
  const { reads, bytes, changedFiles } = await workingSetReads(ws);
  assert.equal(changedFiles, 1);
  assert.equal(bytes, 12288);
  assert.deepEqual(
    reads.map((r) => [r.path, r.offset, r.length]),
    [
      [a, 0, 4096],
      [a, 200_000, 8192],
    ],
  );
  // And the prefetch engine takes them as given (it checks size and mtime itself).
  const { prefetch } = await import("../pagecache/prefetch.js");
  const stats = await prefetch(reads, { events: new Events() });
  assert.deepEqual([stats.files, stats.bytesTotal], [2, 12288]);
});

test("a restore's working-set phase reads every recorded range at once; without a recorded set there is none", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ws-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const events = new Events();
  const timeline = recordTimeline(events);
  await startWorkingSet(dir, events);
  assert.equal(timeline.phases.length, 0, "no working set recorded: nothing to read");

  const lib = join(dir, "lib.so");
  writeFileSync(lib, Buffer.alloc(600_000, 3));
  const { statSync } = await import("node:fs");
  const st = statSync(lib);
  const ranges: [number, number][] = [
    [0, 16384],
    [400_000, 8192],
  ];
  await saveWorkingSet(dir, {
    version: 1,
    recordedAt: new Date().toISOString(),
    bytes: 24576,
    files: [{ path: lib, dev: String(st.dev), ino: String(st.ino), size: st.size, mtimeMs: st.mtimeMs, ranges }],
  });
  await startWorkingSet(dir, events);
  const phase = timeline.phases.find((p) => p.name === "working-set");
  assert.ok(phase?.ok);
  assert.equal(phase.detail?.bytesTotal, 24576, "the head and the range after it, in one phase");
  assert.equal(phase.detail?.files, 1);
});

test("ranges as a restore reads them: adjacent ones joined, those closer than the gap read as one", () => {
  const K = 4096;
  const ranges: [number, number][] = [
    [0, 2 * K],
    [102 * K, K],
    [103 * K, K],
  ];
  assert.deepEqual(mergeRanges(ranges, 104 * K, 0), [
    [0, 2 * K],
    [102 * K, 2 * K],
  ]);
  assert.deepEqual(mergeRanges(ranges, 104 * K, 100 * K), [[0, 104 * K]], "closer than the gap: one read");
});
