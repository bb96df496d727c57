/**
 * The store's and the restore's defences, for real (root, CRIU, the example server), each named after the fault it
 * pins: snapshots and logs root's alone, a damaged or crafted snapshot refused before CRIU or any write outside it,
 * a looping CRIU stopped, a full disk and an impossible STASIS_HOME said plainly.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  lstatSync,
  renameSync,
  cpSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES, type CliRun } from "../testing/cli.js";
import { freePort } from "../proc/net.js";
import { httpOk } from "../engines/http-client.js";

const { home, env, teardown } = tempHome();
let port = 0;
const snap = () => join(home, "snapshots", "good");
const serverArgs = (p: number) => [
  "--",
  "python3",
  join(EXAMPLES, "slow_server.py"),
  "--port",
  String(p),
  "--startup-seconds",
  "0",
];
const captureArgs = (name: string, p: number) => [
  "capture",
  name,
  "--json",
  "--ready-url",
  `http://127.0.0.1:${p}/health`,
  "--canary-url",
  `http://127.0.0.1:${p}/answer?q=x`,
  ...serverArgs(p),
];

before(async () => {
  port = await freePort();
  const cap = await stasis(captureArgs("good", port), env);
  assert.equal(cap.code, 0, cap.output);
});
after(() => teardown(1));

/** Runs `argv` as nobody (uid/gid 65534, no groups): its exit status and output. */
function asNobody(argv: string[]): { status: number | null; output: string } {
  const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ...argv], { encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function failsWith(r: CliRun, code: string): void {
  assert.notEqual(r.code, 0, r.output);
  assert.equal(r.json.error.code, code, r.output);
  assert.ok(r.json.error.hint, "a hint says what to do");
}

/** Every path under `root` (itself included) whose mode gives group or others anything. */
function openToOthers(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink() || st.isSocket()) return;
    if (st.mode & 0o077) out.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(root);
  return out;
}

/** The pages image of the snapshot `good`. */
function pagesImage(): string {
  const images = join(snap(), "images");
  return join(
    images,
    readdirSync(images).find((f) => /^pages-\d+\.img$/.test(f))!,
  );
}

/** Runs `body` and puts the snapshot `good` back as it was afterwards. */
async function withDamaged(body: () => Promise<void>): Promise<void> {
  const backup = mkdtempSync(join(tmpdir(), "stasis-good-"));
  cpSync(snap(), join(backup, "good"), { recursive: true, preserveTimestamps: true });
  try {
    await body();
  } finally {
    rmSync(snap(), { recursive: true, force: true });
    renameSync(join(backup, "good"), snap());
    rmSync(backup, { recursive: true, force: true });
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test that crafts damaged manifests edits any field
function editManifest(edit: (m: any) => void): void {
  const file = join(snap(), "manifest.json");
  const m = JSON.parse(readFileSync(file, "utf8"));
  edit(m);
  writeFileSync(file, JSON.stringify(m));
}

test("a non-root user cannot read a snapshot's image or list its folder, nor a restored instance's logs", async () => {
  assert.deepEqual(openToOthers(home), [], "everything under STASIS_HOME is root's alone");
  const image = pagesImage();
  // Even with the home and the store opened up (a home made by hand, say), the snapshot's own modes hold.
  execFileSync("chmod", ["0755", home, join(home, "snapshots")]);
  try {
    const list = asNobody(["ls", snap()]);
    assert.notEqual(list.status, 0, list.output);
    assert.match(list.output, /Permission denied/);
    const read = asNobody(["cat", image]);
    assert.notEqual(read.status, 0, read.output);
    assert.match(read.output, /Permission denied/);
  } finally {
    execFileSync("chmod", ["0700", home, join(home, "snapshots")]);
  }

  const r = await stasis(["restore", "good", "--json"], env);
  assert.equal(r.code, 0, r.output);
  try {
    const dir = r.json.instance.dir as string;
    assert.deepEqual(openToOthers(dir), [], "the instance's folder, its logs and CRIU's are root's alone");
    execFileSync("chmod", ["0755", home, join(home, "instances")]);
    try {
      assert.notEqual(asNobody(["cat", join(dir, "stdout.log")]).status, 0);
      assert.notEqual(asNobody(["cat", join(dir, "criu-restore.log")]).status, 0);
    } finally {
      execFileSync("chmod", ["0700", home, join(home, "instances")]);
    }
  } finally {
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
  }
});

test("an existing STASIS_HOME open to others is tightened, and the user is told once", async () => {
  execFileSync("chmod", ["0755", home, join(home, "snapshots")]);
  const r = await stasis(["restore", "good"], env);
  assert.equal(r.code, 0, r.output);
  assert.match(r.stderr, /made the store root's alone \(0700\): .*was 755/);
  assert.equal(statSync(home).mode & 0o777, 0o700);
  assert.equal(statSync(join(home, "snapshots")).mode & 0o777, 0o700);
  assert.equal((await stasis(["stop", "--all", "--grace", "1"], env)).code, 0);
  const again = await stasis(["restore", "good"], env);
  assert.equal(again.code, 0, again.output);
  assert.doesNotMatch(again.stderr, /root's alone/, "nothing to say once it is");
  assert.equal((await stasis(["stop", "--all", "--grace", "1"], env)).code, 0);
});

test("a truncated pages image is refused before CRIU starts, whatever --verify says", () =>
  withDamaged(async () => {
    const image = pagesImage();
    truncateSync(image, Math.floor(statSync(image).size / 2));
    const before = new Set(readdirSync(join(home, "instances")));
    for (const verify of ["none", "size", "auto"]) {
      const started = performance.now();
      const r = await stasis(["restore", "good", "--json", "--verify", verify], env);
      failsWith(r, "E_DIGEST_MISMATCH");
      assert.match(r.json.error.message, /pages-\d+\.img has \d+ bytes, the manifest says \d+/);
      assert.ok(performance.now() - started < 10_000, "at once");
    }
    const fresh = readdirSync(join(home, "instances")).filter((d) => !before.has(d));
    for (const d of fresh)
      assert.equal(existsSync(join(home, "instances", d, "criu-restore.log")), false, "CRIU never started");
    await assert.rejects(httpOk(`http://127.0.0.1:${port}/health`, { timeoutMs: 500 }));
  }));

test("a CRIU restore looping on a damaged image is stopped once its log passes the limit, leaving nothing", () =>
  withDamaged(async () => {
    // The manifest agrees with the cut image (so only digests, skipped by --verify none, could tell): CRIU then
    // retries its read of the missing pages for ever, logging each try (it wrote 9.5 GB in 600 s).
    const image = pagesImage();
    const cut = Math.floor(statSync(image).size / 3 / 4096) * 4096;
    truncateSync(image, cut);
    const rel = image.slice(snap().length + 1);
    editManifest((m) => (m.files.find((f: { path: string }) => f.path === rel).size = cut));
    const started = performance.now();
    const r = await stasis(["restore", "good", "--json", "--verify", "none"], env, 120_000);
    failsWith(r, "E_CRIU_RESTORE");
    assert.match(r.json.error.message, /its log .* passed 256 MiB/);
    assert.ok(performance.now() - started < 60_000, "stopped long before the restore's own timeout");
    assert.ok(statSync(r.json.error.details.logPath).size <= 16 * 2 ** 20, "the log is cut back to its start");
    await assert.rejects(httpOk(`http://127.0.0.1:${port}/health`, { timeoutMs: 500 }), "no restored server left");
    const criu = spawnSync("pgrep", ["-f", `criu.*${home}`], { encoding: "utf8" });
    assert.equal(criu.stdout.trim(), "", "no CRIU left running");
  }));

test("a crafted manifest cannot make a restore write or delete a host file, and inspect --verify fails on it", () =>
  withDamaged(async () => {
    const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
    try {
      const precious = join(host, "precious");
      writeFileSync(precious, "the host's");
      const kept = join(snap(), "shm", "0-psm_x");
      execFileSync("mkdir", ["-p", join(snap(), "shm")]);
      writeFileSync(kept, "from the snapshot");
      for (const original of [precious, `/dev/shm/../..${precious}`]) {
        editManifest((m) => (m.shmFiles = [{ original, file: "shm/0-psm_x" }]));
        for (const args of [
          ["restore", "good"],
          ["inspect", "good", "--verify"],
        ]) {
          const r = await stasis([...args, "--json"], env);
          failsWith(r, "E_MANIFEST_INVALID");
          assert.match(r.json.error.message, /shmFiles\.0\.original/);
        }
      }
      editManifest((m) => (m.shmFiles = []));
      editManifest((m) => (m.linkRemaps = [{ original: precious, file: "shm/0-psm_x" }]));
      failsWith(await stasis(["restore", "good", "--json"], env), "E_MANIFEST_INVALID");
      failsWith(await stasis(["inspect", "good", "--verify", "--json"], env), "E_MANIFEST_INVALID");
      assert.equal(readFileSync(precious, "utf8"), "the host's", "neither overwritten nor deleted");
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  }));

test("a snapshot whose image is a symlink to a host file is refused by restore and inspect --verify", () =>
  withDamaged(async () => {
    const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
    try {
      // A host file of the image's very size, so that only where it leads can tell.
      const image = pagesImage();
      const secret = join(host, "secret");
      writeFileSync(secret, Buffer.alloc(statSync(image).size, 7));
      rmSync(image);
      symlinkSync(secret, image);
      for (const args of [
        ["restore", "good", "--verify", "none"],
        ["inspect", "good", "--verify"],
      ]) {
        const r = await stasis([...args, "--json"], env);
        failsWith(r, "E_PATH_OUTSIDE_SNAPSHOT");
        assert.match(r.json.error.message, /pages-\d+\.img.*symlink/);
      }
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  }));

test("a full store is reported as E_NO_SPACE with what it needed, not as a bug, leaving nothing", async () => {
  const mnt = mkdtempSync(join(tmpdir(), "stasis-tiny-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt]);
  try {
    const p = await freePort();
    const r = await stasis(captureArgs("full", p), { STASIS_HOME: mnt });
    failsWith(r, "E_NO_SPACE");
    assert.match(
      r.json.error.message,
      /ran out of space: the snapshot had written [\d.]+ \w+ when the disk filled.*needs/,
    );
    assert.match(r.json.error.hint, /point STASIS_HOME at a larger disk/);
    assert.doesNotMatch(r.json.error.hint, /bug/);
    assert.deepEqual(readdirSync(join(mnt, "snapshots")), [], "no snapshot, no staging folder left");
    await assert.rejects(httpOk(`http://127.0.0.1:${p}/health`, { timeoutMs: 500 }), "the server was stopped");
  } finally {
    execFileSync("umount", [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});

test("a STASIS_HOME under /proc is refused at once instead of spinning for ever", async () => {
  for (const args of [captureArgs("x", port), ["restore", "good", "--json"], ["serve", "--json"]]) {
    const started = performance.now();
    const r = await stasis(args, { STASIS_HOME: "/proc/stasis-home" }, 30_000);
    failsWith(r, "E_STORE_UNUSABLE");
    assert.match(r.json.error.message, /on proc, a pseudo file system/);
    assert.ok(performance.now() - started < 10_000, `${args[0]} answered at once`);
  }
  const sys = await stasis(captureArgs("x", port), { STASIS_HOME: "/sys/stasis" }, 30_000);
  failsWith(sys, "E_STORE_UNUSABLE");
});

test("a STASIS_HOME that cannot be written or created is refused at once, saying so", async () => {
  const mnt = mkdtempSync(join(tmpdir(), "stasis-ro-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", mnt]);
  try {
    const written = await stasis(captureArgs("x", port), { STASIS_HOME: mnt }, 30_000);
    failsWith(written, "E_STORE_UNUSABLE");
    assert.match(written.json.error.message, /not writable/);
    const created = await stasis(["restore", "good", "--json"], { STASIS_HOME: join(mnt, "home") }, 30_000);
    failsWith(created, "E_STORE_UNUSABLE");
    assert.match(created.json.error.message, /cannot be created/);
  } finally {
    execFileSync("umount", [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
