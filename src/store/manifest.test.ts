import { test } from "node:test";
import assert from "node:assert/strict";
import { parseManifest } from "./manifest.js";
import { sampleManifest } from "../testing/fixtures.js";
import { StasisError } from "../errors.js";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as StasisError).code + ": " + (err as StasisError).message;
  }
  return "no error";
}

test("a valid manifest parses", () => {
  const m = sampleManifest();
  assert.deepEqual(parseManifest(JSON.stringify(m), "t"), m);
});

test("bad manifests are E_MANIFEST_INVALID naming the field", () => {
  assert.match(code(() => parseManifest("{", "snap")), /^E_MANIFEST_INVALID: snap: not valid JSON/);
  assert.match(code(() => parseManifest(JSON.stringify({ ...sampleManifest(), schema: "stasis.snapshot/v9" }), "s")), /schema "stasis.snapshot\/v9"/);
  const noFiles = { ...sampleManifest(), files: "x" };
  assert.match(code(() => parseManifest(JSON.stringify(noFiles), "s")), /^E_MANIFEST_INVALID: s: files: Expected array/);
  const escape = sampleManifest();
  escape.files[0]!.path = "../etc/passwd";
  assert.match(code(() => parseManifest(JSON.stringify(escape), "s")), /files\.0\.path: a relative path inside the snapshot/);
  const badDigest = sampleManifest();
  badDigest.files[0]!.sha256 = "xyz";
  assert.match(code(() => parseManifest(JSON.stringify(badDigest), "s")), /sha256 hex digest/);
});

test("a crafted manifest naming host paths is refused as it is parsed (../, absolute, other names)", () => {
  const crafted: [string, (m: ReturnType<typeof sampleManifest>) => void, RegExp][] = [
    ["file ../", (m) => (m.files[0]!.path = "images/../../../etc/shadow"), /files\.0\.path: a relative path inside the snapshot/],
    ["file absolute", (m) => (m.files[0]!.path = "/etc/shadow"), /files\.0\.path/],
    ["shm outside /dev/shm", (m) => (m.shmFiles = [{ original: "/etc/passwd", file: "shm/0-x" }]), /shmFiles\.0\.original: \/dev\/shm\/NAME/],
    ["shm ../", (m) => (m.shmFiles = [{ original: "/dev/shm/../../etc/passwd", file: "shm/0-x" }]), /shmFiles\.0\.original/],
    ["shm copy outside", (m) => (m.shmFiles = [{ original: "/dev/shm/psm_1", file: "../../../etc/shadow" }]), /shmFiles\.0\.file/],
    ["link_remap any name", (m) => (m.linkRemaps = [{ original: "/etc/passwd", file: "link-remap/0-x" }]), /linkRemaps\.0\.original: an absolute path to a file named link_remap\.N/],
    ["link_remap relative", (m) => (m.linkRemaps = [{ original: "link_remap.1", file: "link-remap/0-x" }]), /linkRemaps\.0\.original/],
    ["link_remap copy absolute", (m) => (m.linkRemaps = [{ original: "/dev/shm/link_remap.1", file: "/etc/shadow" }]), /linkRemaps\.0\.file/],
    ["cache outside", (m) => (m.caches = [{ variable: "TRITON_CACHE_DIR", dir: "/x", file: "../x.tar" }]), /caches\.0\.file/],
    ["cache variable", (m) => (m.caches = [{ variable: "../../etc", dir: "/x", file: "caches/x.tar" }]), /caches\.0\.variable/],
  ];
  for (const [what, craft, expected] of crafted) {
    const m = sampleManifest();
    craft(m);
    assert.match(code(() => parseManifest(JSON.stringify(m), "s")), new RegExp(`^E_MANIFEST_INVALID: s: ${expected.source}`), what);
  }
  const good = sampleManifest();
  good.shmFiles = [{ original: "/dev/shm/psm_1", file: "shm/0-psm_1", mode: 0o600 }];
  good.linkRemaps = [{ original: "/dev/shm/link_remap.3", file: "link-remap/0-link_remap.3" }];
  assert.deepEqual(parseManifest(JSON.stringify(good), "s"), good, "what captures write still parses (mode optional)");
});
