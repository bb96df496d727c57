/**
 * Real capture -> restore round trips through the CLI, as root, with real CRIU, of the example servers:
 * (a) a slow-starting HTTP server whose in-memory state must survive, (b) a two-process server shaped like
 * vLLM's API server + EngineCore, (c) one snapshot restored four times, one after the other, with each way CRIU
 * can bring back memory (parallel prefill, CRIU's own copy, lazy pages) and with the whole snapshot prefetched
 * and verified, (d) the working set, (e) a second restore of a running snapshot refused, (f) a dump whose pages two
 * threads write (stasis's CRIU patch), (g) --leave-running, then a restore once the original is stopped.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync, rmSync } from "node:fs";
import { stasis, tempHome } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { processTree } from "../proc/tree.js";

const { env, teardown } = tempHome();
after(() => teardown(1));

test("(a) slow-start server: cold start >= 5 s, restore much faster, in-memory state and canary survive", async () => {
  const { cap, base } = await captureExample("slow", env, {
    startupSeconds: 5,
    canary: "/answer?q=canary",
    options: (base) => [
      "--warmup",
      "3",
      "--warmup-url",
      `${base}/kv/greeting`,
      "--warmup-body",
      '"hello from before the snapshot"',
    ],
  });
  const coldStartMs = cap.json.manifest.timings.coldStartMs as number;
  assert.ok(coldStartMs >= 5000, `cold start ${coldStartMs} ms`);
  assert.equal(cap.json.manifest.tree.processes, 1);
  // Without --leave-running the original is gone once the snapshot is taken.
  await assert.rejects(httpOk(`${base}/health`, { timeoutMs: 1000 }));

  const res = await stasis(["restore", "slow", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assert.ok(res.json.readyMs < coldStartMs / 2, `restore took ${res.json.readyMs} ms`);
  assert.ok(res.json.phases.some((p: { name: string }) => p.name === "criu-restore"));
  // State set by requests before the snapshot is there; the request counter went on from where it was.
  const kv = JSON.parse((await httpOk(`${base}/kv/greeting`)).body);
  assert.equal(kv.value, '"hello from before the snapshot"');
  const stats = JSON.parse((await httpOk(`${base}/stats`)).body);
  assert.ok(stats.requests >= 6, `request counter ${stats.requests}`);
  assert.equal(
    stats.pid,
    cap.json.manifest.tree.rootPid,
    "the server has its pid from capture, in a PID namespace of its own",
  );
  const answer = (await httpOk(`${base}/answer?q=canary`)).body;
  assert.equal(answer, cap.json.manifest.engine.canary.text);

  const ps = await stasis(["ps", "--json"], env);
  assert.deepEqual(
    ps.json.instances.map((i: { id: string }) => i.id),
    [res.json.instance.id],
  );
  const stop = await stasis(["stop", res.json.instance.id, "--json"], env);
  assert.equal(stop.code, 0, stop.output);
  await assert.rejects(httpOk(`${base}/health`, { timeoutMs: 1000 }));
  assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, []);
});

test("(b) two-process server (front end + engine over a unix socket, semaphore, loopback TCP) comes back whole", async () => {
  const { cap, base } = await captureExample("twoproc", env, {
    server: "two_process_server.py",
    startupSeconds: 1,
    canary: "/answer?q=engine",
    options: ["--warmup", "2"],
  });
  assert.ok(cap.json.manifest.tree.processes >= 2, `captured ${cap.json.manifest.tree.processes} processes`);
  assert.ok(cap.json.manifest.linkRemaps.length >= 1, "the multiprocessing semaphore needed a link_remap file");

  const res = await stasis(["restore", "twoproc", "--json"], env);
  assert.equal(res.code, 0, res.output);
  const tree = await processTree(res.json.instance.pid);
  assert.equal(tree.length, cap.json.manifest.tree.processes);
  const pids = JSON.parse((await httpOk(`${base}/pids`)).body);
  assert.equal(pids.frontend, cap.json.manifest.tree.rootPid);
  // The engine answers through the restored unix socket, taking the restored semaphore.
  for (let i = 0; i < 3; i++)
    assert.equal((await httpOk(`${base}/answer?q=engine`)).body, cap.json.manifest.engine.canary.text);
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});

test("(c) one snapshot restored four times, one after the other (default: parallel prefill; copy; lazy pages; whole prefetch + full verify): all answer the canary", async () => {
  const { cap, base } = await captureExample("twice", env, {
    server: "two_process_server.py",
    startupSeconds: 0.5,
    canary: "/answer?q=again",
  });
  const ids: string[] = [];
  const rounds = [[], ["--memory", "copy"], ["--lazy-pages"], ["--prefetch", "all", "--verify", "full"]];
  for (const [round, extra] of rounds.entries()) {
    const res = await stasis(["restore", "twice", "--json", ...extra], env);
    assert.equal(res.code, 0, `round ${round}: ${res.output}`);
    assert.equal((await httpOk(`${base}/answer?q=again`)).body, cap.json.manifest.engine.canary.text);
    const criu = res.json.phases.find((p: { name: string }) => p.name === "criu-restore");
    if (round === 0) {
      // The set-up's CRIU has stasis's patch: by default its lazy-pages workers copy the memory in, all of it
      // before the tree resumed (the daemon counted it; CRIU copied none itself).
      assert.equal(criu.detail.memory, "parallel");
      assert.ok(
        criu.detail.prefill.bytes > 1_000_000 && criu.bytes === criu.detail.prefill.bytes,
        JSON.stringify(criu.detail),
      );
      assert.doesNotMatch(readFileSync(join(res.json.instance.dir, "criu-restore.log"), "utf8"), /pie: \d+: Preadv/);
      // Every byte straight from the mapped pages image (one copy), none read into a buffer first.
      const fromImage = [
        ...readFileSync(join(res.json.instance.dir, "criu-lazy-pages.log"), "utf8").matchAll(
          /worker \d+ copied (\d+) bytes from the mapped images/g,
        ),
      ];
      assert.equal(
        fromImage.reduce((n, m) => n + Number(m[1]), 0),
        criu.detail.prefill.bytes,
        "the workers copied from the mapped image",
      );
    }
    if (round === 1) {
      assert.equal(criu.detail.memory, "copy");
      assert.match(
        readFileSync(join(res.json.instance.dir, "criu-restore.log"), "utf8"),
        /pie: \d+: Preadv/,
        "CRIU copied the memory itself",
      );
    }
    if (extra.includes("--lazy-pages")) {
      // The memory came through criu lazy-pages (userfaultfd), not with the restore.
      const log = readFileSync(join(res.json.instance.dir, "criu-lazy-pages.log"), "utf8");
      assert.match(log, /uffd/);
    }
    if (extra.includes("full")) assert.ok(res.json.reads.bytesVerified > 0 && res.json.reads.bytesAlreadyResident > 0);
    ids.push(res.json.instance.id);
    assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
  }
  assert.equal(new Set(ids).size, 4);
});

test("(d) the working set: a restore records the pages of files its tree touched; a later one with prefetch reads them", async () => {
  const on = env;
  const phase = (res: { json: { phases: { name: string }[] } }, name: string) =>
    res.json.phases.find((p) => p.name === name) as { bytes?: number; detail?: Record<string, number> } | undefined;
  const inspect = await stasis(["inspect", "twice", "--json"], env);
  rmSync(join(inspect.json.snapshotDir, "working-set.json"), { force: true }); // the restores of (c) recorded one
  const first = await stasis(["restore", "twice", "--json"], on);
  assert.equal(first.code, 0, first.output);
  const recorded = phase(first, "record-working-set");
  assert.ok(recorded && recorded.bytes! > 0 && recorded.detail!.files! > 0, JSON.stringify(recorded));
  const ws = JSON.parse(
    readFileSync(join(first.json.instance.dir, "..", "..", "snapshots", "twice", "working-set.json"), "utf8"),
  );
  assert.ok(
    ws.files.some((f: { path: string }) => /python3/.test(f.path)),
    "the interpreter is in it",
  );
  assert.equal((await stasis(["stop", first.json.instance.id], env)).code, 0);
  const second = await stasis(["restore", "twice", "--json", "--prefetch", "images"], on);
  assert.equal(second.code, 0, second.output);
  const read = phase(second, "working-set");
  assert.ok(read && read.detail!.files === ws.files.length && read.detail!.bytesTotal! > 0, JSON.stringify(read));
  assert.equal(phase(second, "record-working-set"), undefined, "recorded once");
  assert.equal((await stasis(["stop", second.json.instance.id], env)).code, 0);
  const off = await stasis(["restore", "twice", "--json", "--prefetch", "images"], { ...env, STASIS_WORKING_SET: "0" });
  assert.equal(off.code, 0, off.output);
  assert.equal(phase(off, "working-set"), undefined, "STASIS_WORKING_SET=0 turns it off");
  assert.equal((await stasis(["stop", off.json.instance.id], env)).code, 0);
});

test("(e) a second restore of a snapshot whose server is still running is refused (its port is taken), and the first keeps serving", async () => {
  const first = await stasis(["restore", "twice", "--json"], env);
  assert.equal(first.code, 0, first.output);
  const second = await stasis(["restore", "twice", "--json"], env);
  assert.deepEqual([second.code, second.json.error.code], [4, "E_ADDRESS_IN_USE"]);
  assert.match(
    second.json.error.message,
    new RegExp(`pid ${first.json.instance.pid}\\b`),
    "names the process listening there",
  );
  const url = first.json.instance.url;
  assert.equal((await httpOk(`${url}/answer?q=again`)).body.length > 0, true);
  const ps = await stasis(["ps", "--json"], env);
  assert.equal(
    ps.json.instances.filter((i: { snapshot: string }) => i.snapshot === "twice").length,
    1,
    "no second instance recorded",
  );
  assert.equal((await stasis(["stop", first.json.instance.id], env)).code, 0);
});

test("(f) 300 MiB of random memory comes back bit for bit, and the pages image's digests, computed while CRIU wrote it, are the file's", async () => {
  const { cap, base } = await captureExample("writers", env, {
    canary: "/ballast",
    serverArgs: ["--ballast-mb", "300"],
  });
  assert.ok(
    cap.json.phases.some((p: { name: string; ok: boolean }) => p.name === "digest-pages" && p.ok),
    "the pages image was followed during the dump",
  );
  // Every chunk read back against the manifest's digests (those of the chunks hashed during the dump included).
  const res = await stasis(["restore", "writers", "--json", "--verify", "full"], env);
  assert.equal(res.code, 0, res.output);
  assert.equal(
    (await httpOk(`${base}/ballast`)).body,
    cap.json.manifest.engine.canary.text,
    "the ballast's digest, as captured",
  );
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
  // From a cold page cache (the snapshot evicted): the images are read ahead beside CRIU.
  assert.equal((await stasis(["evict", "--snapshot", "writers", "--json"], env)).code, 0);
  const cold = await stasis(["restore", "writers", "--json"], env);
  assert.equal(cold.code, 0, cold.output);
  assert.ok(
    cold.json.phases.some((p: { name: string }) => p.name === "prefetch"),
    "the images were read ahead",
  );
  assert.equal(
    (await httpOk(`${base}/ballast`)).body,
    cap.json.manifest.engine.canary.text,
    "the ballast's digest, after a cold restore",
  );
  assert.equal((await stasis(["stop", cold.json.instance.id], env)).code, 0);
});

test("(g) --leave-running: the original keeps serving, its semaphore's link_remap file is kept (CRIU deletes it as such a dump ends), and the snapshot restores after the original is stopped (once its connections' TIME_WAIT is over)", async () => {
  const { cap, base } = await captureExample("alive", env, {
    server: "two_process_server.py",
    startupSeconds: 0.5,
    options: ["--leave-running"],
  });
  assert.ok(cap.json.manifest.linkRemaps.length > 0, "the semaphore's link_remap file is in the snapshot");
  assert.equal(
    (await httpOk(`${base}/answer?q=alive`)).body,
    cap.json.manifest.engine.canary.text,
    "the original still answers",
  );
  const refused = await stasis(["restore", "alive", "--json"], env);
  assert.equal(refused.json.error.code, "E_ADDRESS_IN_USE", "not while the original listens");
  assert.ok(cap.json.manifest.listeners.length >= 2, "the front end listens for clients and for its engine");
  assert.equal((await stasis(["stop", cap.json.instance.id], env)).code, 0);
  // The stopped original closed its connections: the kernel keeps them in TIME_WAIT for up to 60 s on its engine
  // port, where CRIU cannot bind the restored listener meanwhile. The restore fails on that, waits, and succeeds.
  const res = await stasis(["restore", "alive", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assert.ok(
    res.json.phases.some((p: { name: string }) => p.name === "time-wait"),
    "it waited for TIME_WAIT",
  );
  assert.equal((await httpOk(`${base}/answer?q=alive`)).body, cap.json.manifest.engine.canary.text);
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});
