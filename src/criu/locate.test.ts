import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  compareVersions,
  criuCandidates,
  criuInstallPaths,
  locateCriu,
  parseCriuFeatures,
  parseCriuVersion,
} from "./locate.js";
import { StasisError } from "../errors.js";

test("versions parse and compare numerically", () => {
  assert.equal(parseCriuVersion("Version: 4.2.1\nGitID: v4.2.1\n"), "4.2.1");
  assert.equal(parseCriuVersion("Version: 3.17.1\n"), "3.17.1");
  assert.equal(parseCriuVersion("garbage"), undefined);
  assert.equal(compareVersions("4.2.1", "4.1"), 1);
  assert.equal(compareVersions("3.17.1", "4.1"), -1);
  assert.equal(compareVersions("4.10", "4.9"), 1);
  assert.equal(compareVersions("4.1", "4.1.0"), 0);
});

test("the features of stasis's CRIU patches come from `criu --version`; other builds have none", () => {
  assert.deepEqual(parseCriuFeatures("Version: 4.2.1\nFeatures: lazy-prefill\n"), ["lazy-prefill"]);
  assert.deepEqual(parseCriuFeatures("Version: 4.2.1\nGitID: v4.2.1\nFeatures: a  b\n"), ["a", "b"]);
  assert.deepEqual(parseCriuFeatures("Version: 4.2.1\nGitID: v4.2.1\n"), []);
});

test("STASIS_CRIU is the only candidate when set; its version decides", async () => {
  assert.deepEqual(criuCandidates("/x/criu", { PATH: "/usr/bin" }), [{ path: "/x/criu", source: "env" }]);
  const dir = mkdtempSync(join(tmpdir(), "stasis-criu-"));
  try {
    const fake = (name: string, version: string) => {
      const p = join(dir, name);
      writeFileSync(p, `#!/bin/sh\necho 'Version: ${version}'\n`);
      chmodSync(p, 0o755);
      return p;
    };
    const good = await locateCriu(fake("new", "4.2.1"));
    assert.deepEqual([good.version, good.source], ["4.2.1", "env"]);
    await assert.rejects(
      locateCriu(fake("old", "3.17.1")),
      (e: StasisError) => e.code === "E_CRIU_TOO_OLD" && /3\.17\.1/.test(e.message),
    );
    await assert.rejects(
      locateCriu(join(dir, "none")),
      (e: StasisError) => e.code === "E_CRIU_MISSING" && e.hint !== undefined,
    );

    // Asked once while the binary stays the same file; a replaced binary is asked again.
    const counted = join(dir, "counted");
    const script = (version: string) => `#!/bin/sh
echo x >> ${counted}.calls
echo 'Version: ${version}'
`;
    writeFileSync(counted, script("4.2.1"));
    chmodSync(counted, 0o755);
    for (let i = 0; i < 3; i++) assert.equal((await locateCriu(counted)).version, "4.2.1");
    assert.equal(readFileSync(`${counted}.calls`, "utf8"), "x\n");
    writeFileSync(counted, script("4.3"));
    assert.equal((await locateCriu(counted)).version, "4.3");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("what to read ahead for CRIU: a private install's folder (wrapper, binary, libraries), else the binary", () => {
  assert.deepEqual(criuInstallPaths({ path: "/var/lib/stasis/tools/criu/bin/criu", source: "stasis-home" }), [
    "/var/lib/stasis/tools/criu",
  ]);
  assert.deepEqual(criuInstallPaths({ path: "/opt/c/bin/criu", source: "env" }), ["/opt/c"]);
  assert.deepEqual(criuInstallPaths({ path: "/usr/sbin/criu", source: "path" }), ["/usr/sbin/criu"]);
  assert.deepEqual(criuInstallPaths({ path: "/opt/criu-4.2", source: "env" }), ["/opt/criu-4.2"]);
});
