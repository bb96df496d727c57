import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { StasisError } from "../errors.js";
import { Events } from "../events.js";
import { evict } from "./evict.js";
import { PREFETCH_STRATEGIES, prefetch, type PrefetchOptions } from "./prefetch.js";
import { residency } from "./residency.js";
import { residentIn } from "./_files.js";
import { dropFile, scratch, settled, writeFile } from "../testing/testfs.js";

const MiB = 1 << 20;
const code = (c: string, re?: RegExp) => (e: unknown) =>
  e instanceof StasisError && e.code === c && (!re || re.test(e.message));

function digests(path: string, chunkSize: number): string[] {
  const data = readFileSync(path);
  const out: string[] = [];
  for (let at = 0; at < data.length || out.length === 0; at += chunkSize) {
    out.push(
      createHash("sha256")
        .update(data.subarray(at, at + chunkSize))
        .digest("hex"),
    );
  }
  return out;
}

/** Events that run `act` once, synchronously, when the first chunk of the prefetch has landed. */
function afterFirstChunk(act: () => void): Events {
  const events = new Events();
  let fired = false;
  events.on((e) => {
    if (e.type === "progress" && e.done > 0 && !fired) {
      fired = true;
      act();
    }
  });
  return events;
}

const WAYS: { strategy: PrefetchOptions["strategy"] & string; largeFolios?: boolean }[] = [
  ...PREFETCH_STRATEGIES.map((strategy) => ({ strategy })),
  { strategy: "populate", largeFolios: true }, // where the filesystem has no large folios it must work all the same
];
for (const { strategy, largeFolios } of WAYS) {
  test(`prefetch (${strategy}${largeFolios ? ", large folios" : ""}) makes evicted files resident and reports what it read`, async (t) => {
    const s = scratch("prefetch");
    t.after(s.cleanup);
    if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
    const files = [join(s.dir, "a"), join(s.dir, "b")];
    writeFile(files[0]!, 12 * MiB);
    writeFile(files[1]!, 5 * MiB + 777);
    // The kernel may reclaim a page between the prefetch and the residency check: then the scenario runs again.
    const { stats, progress, resident } = await settled(
      async () => {
        files.forEach(dropFile);
        const progress: number[] = [];
        const events = new Events();
        events.on((e) => e.type === "progress" && progress.push(e.done));
        const stats = await prefetch(
          files.map((path) => ({ path })),
          { strategy, concurrency: 3, chunkBytes: MiB, events, ...(largeFolios ? { largeFolios } : {}) },
        );
        return { stats, progress, resident: await residency(files) };
      },
      (r) => r.resident.every((f) => f.residentBytes === f.size),
    );
    assert.equal(stats.files, 2);
    assert.equal(stats.bytesTotal, 17 * MiB + 777);
    assert.equal(stats.bytesRead, 17 * MiB + 777);
    assert.equal(stats.strategy, strategy);
    assert.equal(stats.concurrency, 3);
    assert.equal(progress.at(-1), stats.bytesTotal);
    assert.deepEqual(
      [...progress].sort((a, b) => a - b),
      progress,
      "progress only grows",
    );
    for (const r of resident) assert.equal(r.residentBytes, r.size, r.path);
  });
}

test("prefetch reads files in the order given: the first is resident before the last is touched", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const files = ["first", "second", "third"].map((n) => join(s.dir, n));
  for (const f of files) writeFile(f, 4 * MiB);
  const fds = files.map((f) => openSync(f, "r"));
  t.after(() => fds.forEach((fd) => closeSync(fd)));
  const resident = (i: number) => residentIn(fds[i]!, 0, 4 * MiB, files[i]!).residentBytes;
  const { seen, after } = await settled(
    async () => {
      files.forEach(dropFile);
      let seen: number[] | undefined;
      const events = new Events();
      events.on((e) => {
        if (e.type === "progress" && e.done >= 4 * MiB && !seen) seen = [resident(0), resident(2)];
      });
      await prefetch(
        files.map((path) => ({ path })),
        { concurrency: 1, chunkBytes: MiB, events },
      );
      return { seen, after: [0, 1, 2].map(resident) };
    },
    (r) => r.seen?.[0] === 4 * MiB && r.after.every((b) => b === 4 * MiB),
  );
  assert.deepEqual(seen, [4 * MiB, 0]);
  assert.deepEqual(after, [4 * MiB, 4 * MiB, 4 * MiB]);
});

test("prefetch of a byte range makes that range resident", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const path = join(s.dir, "f");
  writeFile(path, 32 * MiB);
  const range = { path, offset: 9 * MiB + 100, length: 3 * MiB };
  const { stats, r } = await settled(
    async () => {
      dropFile(path);
      const stats = await prefetch([range], { chunkBytes: MiB });
      return { stats, r: (await residency([range]))[0] };
    },
    ({ r }) => r?.residentBytes === 3 * MiB,
  );
  assert.equal(stats.bytesTotal, 3 * MiB);
  assert.equal(r!.residentBytes, 3 * MiB);
  assert.ok((await residency([path]))[0]!.residentBytes < 32 * MiB, "not the whole file");
});

test("skipResident reads only what is missing and counts the rest as already resident", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  if (!s.evictable) return t.skip(`${s.dir} is on tmpfs, whose pages cannot be evicted`);
  const path = join(s.dir, "f");
  writeFile(path, 16 * MiB);
  const skipped = await settled(
    async () => {
      await prefetch([{ path }]);
      await evict([{ path, offset: 8 * MiB, length: 8 * MiB }]); // folio-aligned: exactly the second half goes
      return prefetch([{ path }], { skipResident: true, chunkBytes: MiB });
    },
    (r) => r.bytesAlreadyResident === 8 * MiB,
  );
  assert.deepEqual([skipped.bytesAlreadyResident, skipped.bytesRead, skipped.bytesTotal], [8 * MiB, 8 * MiB, 16 * MiB]);
  // Now everything is resident, so nothing is read and no thread starts. The kernel may still drop a few pages
  // on its own in between (seen once in 20 runs: 24 KiB), so the file is topped up until a pass finds it whole.
  const again = await settled(
    () => prefetch([{ path }], { skipResident: true }),
    (r) => r.bytesRead === 0,
  );
  assert.deepEqual(
    [again.bytesAlreadyResident, again.bytesRead, again.concurrency],
    [16 * MiB, 0, 0],
    "no thread started",
  );
  const full = await settled(
    () => prefetch([{ path }]),
    (r) => r.bytesAlreadyResident === 16 * MiB,
  );
  assert.deepEqual(
    [full.bytesAlreadyResident, full.bytesRead],
    [16 * MiB, 16 * MiB],
    "without skipResident everything is read",
  );
});

test("verify passes intact files (the last chunk shorter, an empty file) and reads every byte even if resident", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  const a = join(s.dir, "a");
  const empty = join(s.dir, "empty");
  writeFile(a, 5 * MiB + 1000);
  writeFile(empty, 0);
  const stats = await prefetch(
    [
      { path: a, verify: { chunkSize: MiB, sha256: digests(a, MiB) } },
      { path: empty, verify: { chunkSize: MiB, sha256: digests(empty, MiB) } },
    ],
    { skipResident: true, chunkBytes: 2 * MiB },
  );
  assert.equal(stats.bytesVerified, 5 * MiB + 1000);
  assert.equal(stats.bytesRead, 5 * MiB + 1000);
});

test("verify names the file and the chunk that does not match", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  const path = join(s.dir, "f");
  writeFile(path, 6 * MiB);
  const sha256 = digests(path, MiB);
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.from("tampered"), 0, 8, 4 * MiB + 12345);
  closeSync(fd);
  await assert.rejects(
    prefetch([{ path, verify: { chunkSize: MiB, sha256 } }], { concurrency: 2 }),
    (e: unknown) =>
      code("E_DIGEST_MISMATCH", /chunk 4 \(bytes 4194304\.\.5242880\)/)(e) && (e as StasisError).message.includes(path),
  );
  await assert.rejects(
    prefetch([{ path, verify: { chunkSize: MiB, sha256: sha256.slice(1) } }]),
    code("E_DIGEST_MISMATCH", /5 chunk digests/),
  );
});

for (const strategy of PREFETCH_STRATEGIES) {
  test(`a file truncated mid-prefetch (${strategy}) is E_FILE_CHANGED`, async (t) => {
    const s = scratch("prefetch");
    t.after(s.cleanup);
    const path = join(s.dir, "f");
    writeFile(path, 16 * MiB);
    dropFile(path);
    const events = afterFirstChunk(() => truncateSync(path, 2 * MiB));
    await assert.rejects(
      prefetch([{ path }], { strategy, concurrency: 1, chunkBytes: MiB, events }),
      code("E_FILE_CHANGED", /shrank while it was being read \(at byte 2097152\)/),
    );
  });
}

const midway: [string, (path: string, dir: string) => void, RegExp][] = [
  ["vanishes", (path) => unlinkSync(path), /vanished/],
  [
    "is replaced",
    (path, dir) => (writeFile(join(dir, "other"), 8 * MiB), renameSync(join(dir, "other"), path)),
    /replaced/,
  ],
  [
    "is modified in place",
    (path) => {
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.from("x"), 0, 1, 0);
      closeSync(fd);
    },
    /modified/,
  ],
];
for (const [what, act, re] of midway) {
  test(`a file that ${what} mid-prefetch is E_FILE_CHANGED`, async (t) => {
    const s = scratch("prefetch");
    t.after(s.cleanup);
    const path = join(s.dir, "f");
    writeFile(path, 8 * MiB);
    const events = afterFirstChunk(() => act(path, s.dir));
    await assert.rejects(prefetch([{ path }], { concurrency: 1, chunkBytes: MiB, events }), code("E_FILE_CHANGED", re));
  });
}

test("files are checked before any read: missing, directory, size and mtime other than expected, bad range", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  const path = join(s.dir, "f");
  writeFile(path, MiB);
  mkdirSync(join(s.dir, "d"));
  await assert.rejects(prefetch([{ path }, { path: join(s.dir, "nope") }]), code("E_FILE_NOT_FOUND", /does not exist/));
  await assert.rejects(prefetch([{ path: join(s.dir, "d") }]), code("E_NOT_A_FILE", /is a directory/));
  await assert.rejects(prefetch([{ path, expectSize: MiB + 1 }]), code("E_FILE_CHANGED", /expected 1048577/));
  await assert.rejects(prefetch([{ path, expectMtimeMs: 1 }]), code("E_FILE_CHANGED", /was modified at/));
  await assert.rejects(prefetch([{ path, offset: MiB, length: 1 }]), code("E_USAGE", /past the end/));
});

test("bad options are E_USAGE naming the option", async () => {
  const bad: PrefetchOptions[] = [{ concurrency: 0 }, { chunkBytes: 10 }, { strategy: "mmap" as never }];
  for (const opts of bad) await assert.rejects(prefetch([], opts), code("E_USAGE", /concurrency|chunkBytes|strategy/));
});

test("an abort stops prefetch with E_INTERRUPTED (and leaves no thread behind)", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  const path = join(s.dir, "f");
  writeFile(path, 8 * MiB);
  const controller = new AbortController();
  await assert.rejects(prefetch([{ path }], { signal: AbortSignal.abort() }), code("E_INTERRUPTED"));
  const events = afterFirstChunk(() => controller.abort());
  await assert.rejects(
    prefetch([{ path }], { concurrency: 1, chunkBytes: MiB, events, signal: controller.signal }),
    code("E_INTERRUPTED"),
  );
});

test("an unreadable file is E_PERMISSION (as root: read by an unprivileged child)", async (t) => {
  const s = scratch("prefetch");
  t.after(s.cleanup);
  const path = join(s.dir, "secret");
  writeFile(path, MiB);
  chmodSync(path, 0o600);
  if (process.getuid?.() !== 0) {
    chmodSync(path, 0o000);
    return void (await assert.rejects(prefetch([{ path }]), code("E_PERMISSION", /permission denied/)));
  }
  // Root reads any file regardless of its mode, so the real EACCES comes from a child running as nobody.
  chmodSync(s.dir, 0o755);
  const mod = fileURLToPath(new URL("./prefetch.js", import.meta.url));
  const script = `import(${JSON.stringify(mod)}).then((m) => m.prefetch([{ path: ${JSON.stringify(path)} }])).then(() => console.log("READ"), (e) => console.log(e.code, e.message))`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    uid: 65534,
    gid: 65534,
    encoding: "utf8",
  });
  if (r.error) return t.skip(`cannot run a child as nobody: ${r.error.message}`);
  if (/Cannot find module|EACCES.*dist/.test(r.stdout + r.stderr))
    return t.skip(`nobody cannot load stasis from ${mod}`);
  assert.match(r.stdout, /^E_PERMISSION prefetch: permission denied on /, r.stderr);
});
