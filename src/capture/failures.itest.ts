/**
 * Error paths, end to end through the CLI: each gives one clear line with a code and a hint, a non-zero exit,
 * leaves no process running and the store as it was.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, writeFileSync, chmodSync, readFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome, type CliRun } from "../testing/cli.js";
import { freePort } from "../proc/net.js";
import { captureExample } from "../testing/example.js";
import { httpOk } from "../engines/http-client.js";
import { locateCriu } from "../criu/locate.js";

const { home, env, teardown } = tempHome();
let port = 0;
const snapshots = () => readdirSync(join(home, "snapshots")).sort();

before(async () => {
  ({ port } = await captureExample("good", env, { canary: "/answer?q=x" }));
});
after(() => teardown(1));

/** One error line with the code, a hint line, the expected exit status. */
function assertFails(r: CliRun, code: string, exit: number): void {
  assert.equal(r.code, exit, `exit status (stderr: ${r.stderr})`);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("stasis: error") || l.startsWith("  hint:"));
  assert.match(lines[0] ?? "", new RegExp(`^stasis: error ${code}: `));
  assert.match(lines[1] ?? "", /^ {2}hint: \S/);
}

async function noServerOn(p: number): Promise<void> {
  await assert.rejects(httpOk(`http://127.0.0.1:${p}/health`, { timeoutMs: 1000 }));
}

test("unknown snapshot", async () => {
  assertFails(await stasis(["restore", "nope"], env), "E_SNAPSHOT_NOT_FOUND", 3);
  assertFails(await stasis(["inspect", "nope"], env), "E_SNAPSHOT_NOT_FOUND", 3);
  assertFails(await stasis(["rm", "nope"], env), "E_SNAPSHOT_NOT_FOUND", 3);
  assert.deepEqual(snapshots(), ["good"]);
});

test("corrupt manifest", async () => {
  const copy = await stasis(["inspect", "good", "--json"], env);
  const manifest = join(home, "snapshots", "good", "manifest.json");
  const original = readFileSync(manifest, "utf8");
  try {
    writeFileSync(manifest, original.slice(0, original.length / 2));
    assertFails(await stasis(["restore", "good"], env), "E_MANIFEST_INVALID", 4);
    writeFileSync(manifest, JSON.stringify({ ...copy.json.manifest, files: "not a list" }));
    const r = await stasis(["restore", "good"], env);
    assertFails(r, "E_MANIFEST_INVALID", 4);
    assert.match(r.stderr, /files/);
    const ls = await stasis(["ls", "--json"], env);
    assert.equal(ls.json.snapshots[0].error !== undefined, true, "ls lists the damaged snapshot as damaged");
  } finally {
    writeFileSync(manifest, original);
  }
  await noServerOn(port);
});

test("an image file modified after capture is refused (digest mismatch) and nothing keeps running", async () => {
  const images = join(home, "snapshots", "good", "images");
  const pages = readdirSync(images).find((f) => f.startsWith("pages-"))!;
  const file = join(images, pages);
  const original = readFileSync(file);
  try {
    const changed = Buffer.from(original);
    changed[changed.length >> 1] = changed[changed.length >> 1]! ^ 0xff; // same size, one byte different
    writeFileSync(file, changed);
    const r = await stasis(["restore", "good"], env);
    assertFails(r, "E_DIGEST_MISMATCH", 4);
    assert.match(r.stderr, new RegExp(pages));
    assertFails(await stasis(["inspect", "good", "--verify"], env), "E_DIGEST_MISMATCH", 4);
    appendFileSync(file, "x"); // and a different size
    assertFails(await stasis(["restore", "good"], env), "E_DIGEST_MISMATCH", 4);
  } finally {
    writeFileSync(file, original);
  }
  await noServerOn(port);
  assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, []);
  // The intact snapshot still restores.
  const ok = await stasis(["restore", "good", "--json"], env);
  assert.equal(ok.code, 0, ok.output);
  assert.ok(ok.json.reads.bytesVerified > 0, "the rewritten file is verified again (--verify auto)");
  assert.equal((await stasis(["stop", ok.json.instance.id], env)).code, 0);
  // Verified and unchanged since: the next restore of this boot checks sizes only.
  const again = await stasis(["restore", "good", "--json"], env);
  assert.equal(again.code, 0, again.output);
  assert.equal(again.json.reads.bytesVerified, 0);
  assert.equal((await stasis(["stop", again.json.instance.id], env)).code, 0);
});

test("readiness timeout: no snapshot, no server left", async () => {
  // An unusual duration, so that no other `sleep` on the machine passes for the server below.
  const p = await freePort();
  const r = await stasis(
    [
      "capture",
      "never-ready",
      "--ready-url",
      `http://127.0.0.1:${p}/health`,
      "--ready-timeout",
      "2",
      "--canary-url",
      `http://127.0.0.1:${p}/`,
      "--",
      "sleep",
      "6017",
    ],
    env,
  );
  assertFails(r, "E_READY_TIMEOUT", 6);
  assert.deepEqual(snapshots(), ["good"]);
  const sleeping = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim() === "sleep 6017";
      } catch {
        return false;
      }
    });
  assert.deepEqual(sleeping, [], "the server was stopped");
});

test("a canary the server does not answer successfully: no snapshot, and the hint says where the server's output is", async () => {
  const { cap: r, port: p } = await captureExample("bad-canary", env, { canary: "/no-such-page", mustSucceed: false });
  assert.deepEqual([r.code, r.json.error.code], [6, "E_ENGINE"]);
  assert.match(r.json.error.message, /answered 404/);
  const [stdout, stderr] = r.json.error.details.serverLogs as string[];
  assert.ok(r.json.error.hint.includes(`the server's output: ${stdout}, ${stderr}`), r.json.error.hint);
  assert.match(readFileSync(stdout!, "utf8"), /slow_server/, "the log is there to read");
  assert.deepEqual(snapshots(), ["good"]);
  await noServerOn(p);
});

test("a server that exits during capture", async () => {
  const p = await freePort();
  const r = await stasis(
    [
      "capture",
      "dies",
      "--ready-url",
      `http://127.0.0.1:${p}/health`,
      "--canary-url",
      `http://127.0.0.1:${p}/`,
      "--",
      "python3",
      "-c",
      "import sys; print('bye'); sys.exit(3)",
    ],
    env,
  );
  assertFails(r, "E_SERVER_EXITED", 6);
  assert.deepEqual(snapshots(), ["good"]);
});

test("criu missing or too old", async () => {
  const fake = join(home, "old-criu");
  writeFileSync(fake, "#!/bin/sh\necho 'Version: 3.17.1'\n");
  chmodSync(fake, 0o755);
  const p = await freePort();
  const args = [
    "capture",
    "x",
    "--ready-url",
    `http://127.0.0.1:${p}/health`,
    "--canary-url",
    `http://127.0.0.1:${p}/`,
    "--",
    "sleep",
    "1",
  ];
  const old = await stasis(args, { ...env, STASIS_CRIU: fake });
  assertFails(old, "E_CRIU_TOO_OLD", 5);
  assert.match(old.stderr, /3\.17\.1/);
  const noCriu = await stasis(["restore", "good"], { ...env, STASIS_CRIU: "/nonexistent/criu" });
  assertFails(noCriu, "E_CRIU_MISSING", 5);
  assert.deepEqual(snapshots(), ["good"]);
});

test("a parallel restore whose lazy-pages daemon fails: one clear error, fast, nothing left running", async () => {
  const real = (await locateCriu(undefined)).path;
  const fake = join(home, "criu-no-lazy");
  writeFileSync(fake, `#!/bin/sh\n[ "$1" = lazy-pages ] && exit 3\nexec ${real} "$@"\n`);
  chmodSync(fake, 0o755);
  const started = Date.now();
  const r = await stasis(["restore", "good", "--memory", "parallel"], { ...env, STASIS_CRIU: fake });
  assertFails(r, "E_CRIU_RESTORE", 6);
  assert.match(r.stderr, /criu lazy-pages failed: exit status 3/);
  assert.ok(Date.now() - started < 8000, "not left waiting for the daemon's socket");
  await noServerOn(port);
  assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, []);
});

test("a snapshot from another machine is refused; --fallback warm starts its server the ordinary way instead", async () => {
  const manifest = join(home, "snapshots", "good", "manifest.json");
  const original = readFileSync(manifest, "utf8");
  try {
    const m = JSON.parse(original);
    m.fingerprint.kernel = "5.4.0-other";
    writeFileSync(manifest, JSON.stringify(m));
    const r = await stasis(["restore", "good"], env);
    assertFails(r, "E_FINGERPRINT_MISMATCH", 4);
    assert.match(r.stderr, /kernel: captured 5\.4\.0-other, here /);
    await noServerOn(port);
    const warm = await stasis(["restore", "good", "--fallback", "warm", "--json"], env);
    assert.equal(warm.code, 0, warm.output);
    assert.match(warm.json.fallback.reason, /different machine/);
    assert.equal(warm.json.fallback.canaryMatched, true);
    assert.equal((await httpOk(`http://127.0.0.1:${port}/answer?q=x`)).body, m.engine.canary.text);
    assert.equal((await stasis(["stop", warm.json.instance.id], env)).code, 0);
  } finally {
    writeFileSync(manifest, original);
  }
});
