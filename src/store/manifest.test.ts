import { test } from "node:test";
import assert from "node:assert/strict";
import { parseManifest } from "./manifest.js";
import { sampleManifest } from "../testing/fixtures.js";
import { StasisError } from "../errors.js";
import { contractSchema } from "../contracts/contracts.js";

async function code(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    return (err as StasisError).code + ": " + (err as StasisError).message;
  }
  return "no error";
}

test("a valid manifest parses", async () => {
  const m = sampleManifest();
  assert.deepEqual(await parseManifest(JSON.stringify(m), "t"), m);
});

test("bad manifests are E_MANIFEST_INVALID naming the field", async () => {
  assert.match(await code(() => parseManifest("{", "snap")), /^E_MANIFEST_INVALID: snap: not valid JSON/);
  assert.match(
    await code(() => parseManifest(JSON.stringify({ ...sampleManifest(), schema: "stasis.snapshot/v9" }), "s")),
    /schema "stasis.snapshot\/v9"/,
  );
  const noFiles = { ...sampleManifest(), files: "x" };
  assert.match(
    await code(() => parseManifest(JSON.stringify(noFiles), "s")),
    /^E_MANIFEST_INVALID: s: files: Expected array/,
  );
  const escape = sampleManifest();
  escape.files[0]!.path = "../etc/passwd";
  assert.match(
    await code(() => parseManifest(JSON.stringify(escape), "s")),
    /files\.0\.path: a relative path inside the snapshot/,
  );
  const badDigest = sampleManifest();
  badDigest.files[0]!.sha256 = "xyz";
  assert.match(await code(() => parseManifest(JSON.stringify(badDigest), "s")), /sha256 hex digest/);
});

test("a crafted manifest naming host paths is refused as it is parsed (../, absolute, other names)", async () => {
  type M = ReturnType<typeof sampleManifest>;
  const shm =
    (original: string, file = "shm/0-x") =>
    (m: M) =>
      (m.shmFiles = [{ original, file }]);
  const remap =
    (original: string, file = "link-remap/0-x") =>
    (m: M) =>
      (m.linkRemaps = [{ original, file }]);
  const cache = (variable: string, file: string) => (m: M) => (m.caches = [{ variable, dir: "/x", file }]);
  const crafted: [string, (m: M) => void, RegExp][] = [
    ["file ../", (m) => (m.files[0]!.path = "images/../../../etc/shadow"), /files\.0\.path: a relative path inside/],
    ["file absolute", (m) => (m.files[0]!.path = "/etc/shadow"), /files\.0\.path/],
    ["shm outside /dev/shm", shm("/etc/passwd"), /shmFiles\.0\.original: \/dev\/shm\/NAME/],
    ["shm ../", shm("/dev/shm/../../etc/passwd"), /shmFiles\.0\.original/],
    ["shm copy outside", shm("/dev/shm/psm_1", "../../../etc/shadow"), /shmFiles\.0\.file/],
    ["link_remap any name", remap("/etc/passwd"), /linkRemaps\.0\.original: an absolute path to a file named/],
    ["link_remap relative", remap("link_remap.1"), /linkRemaps\.0\.original/],
    ["link_remap copy absolute", remap("/dev/shm/link_remap.1", "/etc/shadow"), /linkRemaps\.0\.file/],
    ["cache outside", cache("TRITON_CACHE_DIR", "../x.tar"), /caches\.0\.file/],
    ["cache variable", cache("../../etc", "caches/x.tar"), /caches\.0\.variable/],
  ];
  for (const [what, craft, expected] of crafted) {
    const m = sampleManifest();
    craft(m);
    const error = await code(() => parseManifest(JSON.stringify(m), "s"));
    assert.match(error, new RegExp(`^E_MANIFEST_INVALID: s: ${expected.source}`), what);
  }
  const good = sampleManifest();
  good.shmFiles = [{ original: "/dev/shm/psm_1", file: "shm/0-psm_1", mode: 0o600 }];
  good.linkRemaps = [{ original: "/dev/shm/link_remap.3", file: "link-remap/0-link_remap.3" }];
  assert.deepEqual(
    await parseManifest(JSON.stringify(good), "s"),
    good,
    "what captures write still parses (mode optional)",
  );
});

test("the engine's state is checked against its kind's contract (contracts/engine-state.*.schema.json)", async () => {
  const vllm = (state: Record<string, unknown>) => {
    const m = sampleManifest();
    m.engine = { ...m.engine, kind: "vllm", state };
    return JSON.stringify(m);
  };
  const slept = { sleepLevel: 2, ranks: 1, weights: "weights/rank{rank}.stasisw", reuseKey: "k" };
  assert.equal((await parseManifest(vllm(slept), "s")).engine.state.ranks, 1);
  assert.equal((await parseManifest(vllm({ sleepLevel: 0, reason: "no sleep mode" }), "s")).engine.state.sleepLevel, 0);
  assert.match(
    await code(() => parseManifest(vllm({ ...slept, ranks: "one" }), "s")),
    /^E_MANIFEST_INVALID: s: engine\.state\.ranks: not the vllm engine's state/,
  );
  const stage = { python: "/usr/bin/python3", path: "/opt/stasis/python", arenaSize: 0, tensors: [] };
  assert.match(await code(() => parseManifest(vllm({ ...slept, stage }), "s")), /engine\.state\.stage\.arenaSize/);
});

test("an http snapshot's state is read without loading the contracts: its contract is any object", async () => {
  // parseManifest skips the http engine's contract; should that contract ever gain a field, this fails.
  const schema = contractSchema("engine-state.http");
  assert.deepEqual(schema.properties ?? {}, {});
  assert.equal(schema.required, undefined);
  assert.notEqual(schema.additionalProperties, false);
  const m = sampleManifest();
  m.engine.state = { anything: 1 };
  assert.deepEqual((await parseManifest(JSON.stringify(m), "s")).engine.state, { anything: 1 });
  assert.match(
    await code(() => parseManifest(JSON.stringify({ ...m, engine: { ...m.engine, state: [1] } }), "s")),
    /^E_MANIFEST_INVALID: s: engine\.state: Expected object/,
  );
});
