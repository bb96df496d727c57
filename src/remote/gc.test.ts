import { test } from "node:test";
import assert from "node:assert/strict";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { sampleManifest } from "../testing/fixtures.js";
import type { Remote } from "./client.js";
import { gcRemote } from "./gc.js";

const HOUR = 3600_000;
const NOW = 1_000 * HOUR;
const d = (c: string) => c.repeat(64);

/** A bucket in memory: objects with the time they were written. */
function bucket(objects: Record<string, { body?: string; age: number }>) {
  const store = new Map<string, { body: Buffer; at: Date }>(
    Object.entries(objects).map(([k, o]) => [k, { body: Buffer.from(o.body ?? "x"), at: new Date(NOW - o.age) }]),
  );
  const remote: Remote = {
    endpoint: "memory",
    credentialSource: "none",
    head: async (k) => store.get(k)?.body.length,
    get: async (k) => store.get(k)!.body,
    getIfExists: async (k) => store.get(k)?.body,
    put: async (k, body) => void store.set(k, { body, at: new Date(NOW) }),
    getRange: async () => undefined,
    putParts: async () => undefined,
    folders: async () => [],
    list: async (prefix) =>
      [...store]
        .filter(([k]) => k.startsWith(prefix))
        .map(([key, o]) => ({ key, size: o.body.length, lastModified: o.at })),
    delete: async (k) => void store.delete(k),
  };
  return { remote, store };
}

const manifestOf = (...chunks: string[]) => {
  const m = sampleManifest();
  m.files = chunks.map((c, i) => ({ ...m.files[0]!, path: `f${i}`, chunks: [c] }));
  return JSON.stringify(m);
};
const indexOf = (...chunks: string[]) => JSON.stringify({ files: [{ chunks }] });

const gc = (remote: Remote, yes: boolean, graceHours = 24) =>
  gcRemote({ store: "s3://bkt/p", yes, graceMs: graceHours * HOUR, now: () => NOW, remote }, new Events());

test("a dry run says which unused chunks older than the grace period would go, and removes nothing", async () => {
  const { remote, store } = bucket({
    "p/snapshots/a/manifest.json": { body: manifestOf(d("a")), age: 48 * HOUR },
    [`p/chunks/${d("a")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("b")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("c")}`]: { age: 1 * HOUR },
  });
  const r = await gc(remote, false);
  assert.deepEqual(
    { snapshots: r.snapshots, chunks: r.chunks, referenced: r.referenced, young: r.young, removed: r.removed },
    { snapshots: 1, chunks: 3, referenced: 1, young: 1, removed: 1 },
  );
  assert.equal(r.dryRun, true);
  assert.equal(store.size, 4, "nothing removed");
});

test("--yes removes unused old chunks and dead pushes; keeps the used, the young, a push under way's", async () => {
  const { remote, store } = bucket({
    "p/snapshots/a/manifest.json": { body: manifestOf(d("a")), age: 48 * HOUR },
    "p/snapshots/a/index.json": { body: indexOf(d("a")), age: 48 * HOUR },
    "p/snapshots/pushing/index.json": { body: indexOf(d("e")), age: 0.5 * HOUR },
    "p/snapshots/died/index.json": { body: indexOf(d("f")), age: 30 * HOUR },
    [`p/chunks/${d("a")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("e")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("f")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("b")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("c")}`]: { age: 1 * HOUR },
  });
  const r = await gc(remote, true);
  assert.deepEqual(r.abandoned, ["died"]);
  assert.equal(r.removed, 2);
  assert.deepEqual(
    [...store.keys()].filter((k) => k.includes("/chunks/")).sort(),
    [d("a"), d("c"), d("e")].map((c) => `p/chunks/${c}`),
  );
  assert.ok(!store.has("p/snapshots/died/index.json"));
});

test("a push that writes its index while gc runs keeps the old chunks it found in the bucket", async () => {
  const { remote, store } = bucket({
    [`p/chunks/${d("a")}`]: { age: 48 * HOUR },
    [`p/chunks/${d("b")}`]: { age: 48 * HOUR },
  });
  const list = remote.list;
  let looks = 0;
  remote.list = async (prefix) => {
    // The push's index lands after gc's first look at the references, before its second (before removing).
    if (prefix.endsWith("snapshots/") && ++looks === 2) {
      await remote.put("p/snapshots/n/index.json", Buffer.from(indexOf(d("a"))));
    }
    return list(prefix);
  };
  const r = await gc(remote, true);
  assert.equal(r.removed, 1);
  assert.ok(store.has(`p/chunks/${d("a")}`), "the new push's chunk stayed");
  assert.ok(!store.has(`p/chunks/${d("b")}`));
});

test("a damaged manifest stops gc before anything is removed, naming it", async () => {
  const { remote, store } = bucket({
    "p/snapshots/a/manifest.json": { body: "{not json", age: 48 * HOUR },
    [`p/chunks/${d("b")}`]: { age: 48 * HOUR },
  });
  await assert.rejects(
    gc(remote, true),
    (err: StasisError) => err.code === "E_MANIFEST_INVALID" && /snapshots\/a\/manifest\.json/.test(err.message),
  );
  assert.equal(store.size, 2);
});
