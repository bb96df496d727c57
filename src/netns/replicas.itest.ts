/**
 * Replicas in network namespaces, for real (root, real CRIU, the two-process example server, whose semaphore lives
 * in /dev/shm as a link_remap file): (a) three restores of one snapshot at once with --publish, each answering its
 * canary at its own host port, each with its own /dev/shm, stopped leaving no forwarder and no namespace; (b) a
 * restore into a namespace the test made (`ip netns add`), reachable inside it at the captured address, a second
 * restore into the same namespace refused; (c) --foreground under a supervisor: READY=1 over a real unix datagram
 * socket after the canary, SIGTERM passed on, the server's exit status returned.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { stasis, tempHome, MAIN } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { processesNaming } from "../proc/tree.js";

const { env, home, teardown } = tempHome();
const quiet = { ...env, STASIS_NO_DAEMON: "1" };
let port = 0;
let canaryText = "";
let canaryPath = "";
after(() => teardown(1));

before(async () => {
  canaryPath = "/answer?q=canary";
  const example = await captureExample("rep", env, {
    server: "two_process_server.py",
    startupSeconds: 0.5,
    canary: canaryPath,
  });
  port = example.port;
  const cap = example.cap;
  canaryText = cap.json.manifest.engine.canary.text;
  const remaps = cap.json.manifest.linkRemaps as { original: string }[];
  assert.ok(
    remaps.some((k) => k.original.startsWith("/dev/shm/")),
    `a /dev/shm file: ${JSON.stringify(remaps)}`,
  );
});

/** The network namespaces of every process now ("net:[INODE]"). */
function netnsNow(): Set<string> {
  const out = new Set<string>();
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      out.add(readlinkSync(`/proc/${p}/ns/net`));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function assertNothingLeft(ids: string[], nsBefore: Set<string>): Promise<void> {
  assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, []);
  for (const id of ids) {
    assert.deepEqual(await processesNaming(join(home, "instances", id)), [], `instance ${id}'s forwarder is gone`);
  }
  const extra = [...netnsNow()].filter((n) => !nsBefore.has(n));
  assert.deepEqual(extra, [], "no network namespace left");
}

test("(a) three replicas of one snapshot restored at once, each at its own port, stopped cleanly", async (t) => {
  const nsBefore = netnsNow();
  t.after(() => stasis(["stop", "--all", "--grace", "1"], env)); // whatever this test left, not the next test's
  const restore = () => stasis(["restore", "rep", "--publish", "127.0.0.1", "--json"], quiet);
  const runs = await Promise.all([restore(), restore(), restore()]);
  for (const r of runs) assert.equal(r.code, 0, r.output);
  const urls = runs.map((r) => r.json.instance.url as string);
  assert.equal(new Set(urls).size, 3, `three addresses: ${urls.join(" ")}`);
  for (const r of runs) {
    assert.equal(r.json.instance.placement.netns, "own");
    assert.equal(r.json.instance.placement.innerUrl, `http://127.0.0.1:${port}`);
    assert.equal((await httpOk(r.json.instance.url + canaryPath)).body, canaryText);
  }
  // Each in a namespace of its own: the captured port is not the host's, and each replica has its own state.
  await assert.rejects(httpOk(`http://127.0.0.1:${port}/health`, { timeoutMs: 1000 }));
  const netns = runs.map((r) => readlinkSync(`/proc/${r.json.instance.pid}/ns/net`));
  assert.equal(new Set(netns).size, 3, "three network namespaces");
  const shmDevice = (pid: number) => spawnSync("stat", ["-L", "-c", "%d", `/proc/${pid}/root/dev/shm`]).stdout + "";
  const shm = runs.map((r) => shmDevice(r.json.instance.pid).trim());
  assert.equal(new Set(shm).size, 3, `three /dev/shm mounts: ${shm.join(" ")}`);
  const ps = await stasis(["ps", "--json"], env);
  assert.deepEqual(ps.json.instances.map((i: { url: string }) => i.url).sort(), [...urls].sort());
  for (const r of runs) assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
  await assertNothingLeft(
    runs.map((r) => r.json.instance.id as string),
    nsBefore,
  );
});

test("(b) a restore into a network namespace the test made, answering inside it at the captured address", async () => {
  const name = `stasis-itest-${randomBytes(3).toString("hex")}`;
  assert.equal(spawnSync("ip", ["netns", "add", name]).status, 0);
  try {
    const r = await stasis(["restore", "rep", "--netns", `/run/netns/${name}`, "--json"], quiet);
    assert.equal(r.code, 0, r.output);
    const url = `http://127.0.0.1:${port}${canaryPath}`;
    const get = `import urllib.request; print(urllib.request.urlopen("${url}").read().decode(), end="")`;
    const inside = spawnSync("ip", ["netns", "exec", name, "python3", "-c", get]);
    assert.equal(inside.stdout.toString(), canaryText, inside.stderr.toString());
    // Published on host loopback too (a free port), for the canary and `ps`.
    assert.equal((await httpOk(r.json.instance.url + canaryPath)).body, canaryText);
    const again = await stasis(["restore", "rep", "--netns", `/run/netns/${name}`, "--json"], quiet);
    assert.equal(again.code, 4, again.output);
    assert.equal(again.json.error.code, "E_ADDRESS_IN_USE");
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
    const left = spawnSync("ip", ["netns", "pids", name]).stdout.toString().trim();
    assert.equal(left, "", "nothing left in the namespace");
  } finally {
    spawnSync("ip", ["netns", "del", name]);
  }
});

test("(b2) --netns refuses what is not a network namespace", async () => {
  const r = await stasis(["restore", "rep", "--netns", "/etc/hostname", "--json"], quiet);
  assert.equal(r.code, 2, r.output);
  assert.match(r.json.error.message, /not a namespace file/);
  const gone = await stasis(["restore", "rep", "--netns", "999999999", "--json"], quiet);
  assert.match(gone.json.error.message, /no process 999999999/);
});

test("(c) --foreground under a supervisor: READY=1 after the canary, SIGTERM passed on, the status", async () => {
  const nsBefore = netnsNow();
  const sock = join(home, "notify.sock");
  // The service manager's end: a real unix datagram socket (Node has none), printing each datagram as JSON.
  const receiver = spawn(
    "python3",
    [
      "-u",
      "-c",
      "import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound')\n" +
        "while True: print(json.dumps(s.recv(4096).decode()))",
      sock,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: receiver.stdout! })[Symbol.asyncIterator]();
  try {
    assert.equal((await lines.next()).value, "bound");
    const fg = spawn(process.execPath, [MAIN, "restore", "rep", "--publish", "127.0.0.1", "--foreground"], {
      env: { ...process.env, ...quiet, NOTIFY_SOCKET: sock },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    fg.stdout!.on("data", (d: Buffer) => (output += d));
    fg.stderr!.on("data", (d: Buffer) => (output += d));
    const exited = new Promise<number | null>((resolve) => fg.on("exit", (code) => resolve(code)));
    const ready = JSON.parse((await lines.next()).value as string) as string;
    assert.match(ready, /^READY=1\nSTATUS=serving at http:\/\/127\.0\.0\.1:\d+$/);
    // READY=1 came after the canary: the server answers at once.
    const url = /serving at (\S+)/.exec(ready)![1]!;
    assert.equal((await httpOk(url + canaryPath)).body, canaryText);
    const inst = (await stasis(["ps", "--json"], env)).json.instances.find((i: { url: string }) => i.url === url);
    assert.ok(inst, "ps lists the instance at the address READY=1 named");
    fg.kill("SIGTERM");
    assert.equal(JSON.parse((await lines.next()).value as string), "STOPPING=1");
    // The example server dies of SIGTERM (no handler): 128 + 15, as a shell would say.
    assert.equal(await exited, 143, output);
    assert.match(output, /killed by signal 15/);
    await assertNothingLeft([inst.id], nsBefore);
  } finally {
    receiver.kill();
  }
});
