import { test } from "node:test";
import assert from "node:assert/strict";
import {
  mkdtempSync,
  rmSync,
  writeFileSync,
  linkSync,
  statSync,
  readFileSync,
  existsSync,
  openSync,
  closeSync,
  unlinkSync,
} from "node:fs";
import { chmodSync, lstatSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { findLinkRemaps, holdLinkRemapsScript, keepLinkRemaps, placeFiles, unlinkedFiles } from "./kept-files.js";
import { removePlaced } from "./kept-files.js";
import { StasisError } from "../errors.js";

test("link_remap files are found by inode, kept in the snapshot, and put back as fresh copies", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lr-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-lr-snap-"));
  try {
    writeFileSync(join(dir, "sem.abc"), "semaphore");
    linkSync(join(dir, "sem.abc"), join(dir, "link_remap.7")); // what CRIU does at dump
    writeFileSync(join(dir, "link_remap.8"), "someone else's");
    const ino = statSync(join(dir, "sem.abc")).ino;
    const found = await findLinkRemaps(new Map([[dir, new Set([ino])]]));
    assert.deepEqual(found, [{ original: join(dir, "link_remap.7") }]);
    chmodSync(join(dir, "sem.abc"), 0o640);
    const kept = await keepLinkRemaps(found, snap);
    assert.deepEqual(kept, [{ original: join(dir, "link_remap.7"), file: "link-remap/0-link_remap.7", mode: 0o640 }]);
    assert.equal(existsSync(join(dir, "link_remap.7")), false);
    assert.equal(readFileSync(join(snap, kept[0]!.file), "utf8"), "semaphore");
    assert.equal(statSync(join(snap, kept[0]!.file)).mode & 0o777, 0o600, "the copy in the snapshot is root's alone");

    // A live process's file of the same name is replaced by a new inode, never written into.
    writeFileSync(join(dir, "link_remap.7"), "live");
    const liveIno = statSync(join(dir, "link_remap.7")).ino;
    const first = await placeFiles(snap, kept, "link-remap");
    assert.equal(readFileSync(join(dir, "link_remap.7"), "utf8"), "semaphore");
    assert.equal(statSync(join(dir, "link_remap.7")).mode & 0o7777, 0o640, "put back with the mode CRIU dumped");
    assert.notEqual(statSync(join(dir, "link_remap.7")).ino, liveIno);
    assert.deepEqual(first.placed, [
      {
        path: join(dir, "link_remap.7"),
        dev: statSync(join(dir, "link_remap.7")).dev,
        ino: statSync(join(dir, "link_remap.7")).ino,
      },
    ]);
    // A second placing (another restore of the same snapshot) takes the name: the first one's remove leaves it.
    const second = await placeFiles(snap, kept, "link-remap");
    await first.remove();
    assert.equal(readFileSync(join(dir, "link_remap.7"), "utf8"), "semaphore", "the second restore's file stays");
    await second.remove();
    assert.equal(existsSync(join(dir, "link_remap.7")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(snap, { recursive: true, force: true });
  }
});

test("unlinkedFiles finds files this process holds open under a deleted name", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lr-"));
  const path = join(dir, "gone");
  writeFileSync(path, "x");
  const fd = openSync(path, "r");
  try {
    const ino = statSync(path).ino;
    unlinkSync(path);
    const found = await unlinkedFiles([process.pid]);
    assert.ok(found.get(dir)?.has(ino));
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("with --leave-running the dump's action script holds the link_remap files that CRIU then deletes, and capture keeps them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lr 'q-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-lr-snap-"));
  t.after(() => [dir, snap].forEach((d) => rmSync(d, { recursive: true, force: true })));
  writeFileSync(join(dir, "sem.abc"), "semaphore");
  linkSync(join(dir, "sem.abc"), join(dir, "link_remap.3")); // CRIU's link at dump
  const ino = statSync(join(dir, "sem.abc")).ino;
  const mode = statSync(join(dir, "sem.abc")).mode & 0o7777;
  const script = join(snap, "action.sh");
  writeFileSync(script, holdLinkRemapsScript([dir], "id1"), { mode: 0o755 });
  execFileSync(script, { env: { ...process.env, CRTOOLS_SCRIPT_ACTION: "pre-dump" } });
  assert.equal(existsSync(join(dir, ".stasis-keep-id1-link_remap.3")), false, "only on post-dump");
  execFileSync(script, { env: { ...process.env, CRTOOLS_SCRIPT_ACTION: "post-dump" } });
  unlinkSync(join(dir, "link_remap.3")); // what CRIU then does with --leave-running
  unlinkSync(join(dir, "sem.abc")); // the server's own unlink
  const found = await findLinkRemaps(new Map([[dir, new Set([ino])]]), "id1");
  assert.deepEqual(found, [{ original: join(dir, "link_remap.3"), held: join(dir, ".stasis-keep-id1-link_remap.3") }]);
  const kept = await keepLinkRemaps(found, snap);
  assert.deepEqual(kept, [{ original: join(dir, "link_remap.3"), file: "link-remap/0-link_remap.3", mode }]);
  assert.equal(readFileSync(join(snap, kept[0]!.file), "utf8"), "semaphore");
  assert.equal(existsSync(join(dir, ".stasis-keep-id1-link_remap.3")), false, "the held link is gone");
});

test("createdSince keeps the files created at or after a time (a server's own), by identity", async (t) => {
  const { createdSince } = await import("./kept-files.js");
  const dir = mkdtempSync(join(tmpdir(), "stasis-own-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "older"), "x");
  await new Promise((r) => setTimeout(r, 20));
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 20));
  writeFileSync(join(dir, "own"), "y");
  const st = statSync(join(dir, "own"));
  if (!(st.birthtimeMs > 0)) return t.skip("this file system records no creation time");
  assert.deepEqual(await createdSince([join(dir, "older"), join(dir, "own"), join(dir, "missing")], since), [
    { path: join(dir, "own"), dev: st.dev, ino: st.ino },
  ]);
});

const refused = (re?: RegExp) => (e: unknown) =>
  e instanceof StasisError && e.code === "E_PATH_OUTSIDE_SNAPSHOT" && (!re || re.test(e.message));

test("a crafted manifest cannot make a restore overwrite or delete a host file", async (t) => {
  const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-snap-"));
  t.after(() => [host, snap].forEach((d) => rmSync(d, { recursive: true, force: true })));
  mkdirSync(join(snap, "shm"));
  writeFileSync(join(snap, "shm", "0-x"), "from the snapshot");
  writeFileSync(join(host, "precious"), "the host's");
  for (const [original, role] of [
    [join(host, "precious"), "link-remap"],
    [join(host, "precious"), "shm"],
    ["/dev/shm/../../" + join(host, "precious"), "shm"],
    ["/dev/shm/a/b", "shm"],
    [`${host}/../link_remap.1`, "link-remap"],
    ["link_remap.1", "link-remap"],
  ] as const) {
    await assert.rejects(placeFiles(snap, [{ original, file: "shm/0-x" }], role), refused(), original);
  }
  assert.equal(readFileSync(join(host, "precious"), "utf8"), "the host's", "neither overwritten nor deleted");
  assert.deepEqual(readdirSync(host).sort(), ["precious"], "nothing was written beside it");
});

test("a crafted manifest cannot make a restore read a host file through a symlink in the snapshot", async (t) => {
  const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-snap-"));
  t.after(() => [host, snap].forEach((d) => rmSync(d, { recursive: true, force: true })));
  writeFileSync(join(host, "secret"), "the host's secret");
  mkdirSync(join(snap, "link-remap"));
  symlinkSync(join(host, "secret"), join(snap, "link-remap", "0-link_remap.1"));
  symlinkSync(host, join(snap, "shm"));
  const target = join(host, "link_remap.1");
  const place = (file: string) => placeFiles(snap, [{ original: target, file }], "link-remap");
  await assert.rejects(place("link-remap/0-link_remap.1"), refused(/symlink/));
  await assert.rejects(place("shm/secret"), refused(/leads to/));
  await assert.rejects(place("../" + host + "/secret"), refused());
  assert.equal(existsSync(target), false, "the host's secret was not copied out");
});

test("a symlinked folder on the way to a placed file is refused, and removal never follows a symlink", async (t) => {
  const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-snap-"));
  t.after(() => [host, snap].forEach((d) => rmSync(d, { recursive: true, force: true })));
  mkdirSync(join(snap, "link-remap"));
  writeFileSync(join(snap, "link-remap", "0-link_remap.2"), "sem");
  mkdirSync(join(host, "real"));
  symlinkSync(join(host, "real"), join(host, "via"));
  const original = join(host, "via", "link_remap.2");
  const file = "link-remap/0-link_remap.2";
  await assert.rejects(placeFiles(snap, [{ original, file }], "link-remap"), refused(/leads to/));
  assert.equal(existsSync(join(host, "real", "link_remap.2")), false);

  const ok = await placeFiles(snap, [{ original: join(host, "real", "link_remap.2"), file }], "link-remap");
  // Someone swaps the placed file for a symlink to a host file: removing the placed file leaves both alone.
  writeFileSync(join(host, "precious"), "the host's");
  rmSync(join(host, "real", "link_remap.2"));
  symlinkSync(join(host, "precious"), join(host, "real", "link_remap.2"));
  await removePlaced(ok.placed);
  assert.equal(lstatSync(join(host, "real", "link_remap.2")).isSymbolicLink(), true);
  assert.equal(readFileSync(join(host, "precious"), "utf8"), "the host's");
});
