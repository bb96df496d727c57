/**
 * The restore's isolation script brings a fresh namespace's loopback up, and puts the snapshot's own addresses on it,
 * without iproute2 too (GPU machines and slim container images often lack `ip`): run for real in a new network
 * namespace whose loopback the test set down, with a PATH that holds no `ip`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isolationScript } from "./private-shm.js";

/** The script's part before the /dev/shm mount: the loopback, and the addresses on it. */
function loopbackPart(addresses: string[]): string {
  const script = isolationScript({ shmFrom: "/nonexistent", addresses });
  return script.slice(0, script.indexOf("\nmount "));
}

const ADDRESSES = ["192.0.2.77", "2001:db8:0:0:0:0:0:77"];

test("loopback comes up in a new namespace without `ip` on the PATH, through Python's ioctl and netlink", () => {
  const bin = mkdtempSync(join(tmpdir(), "stasis-noip-"));
  try {
    // A PATH of only what the fragment may use: sh and python3 (no ip).
    for (const tool of ["sh", "python3"]) {
      // The interpreter itself, not a shim script that needs more of the PATH.
      const find = tool === "python3" ? `python3 -c "import sys; print(sys.executable)"` : `command -v ${tool}`;
      const where = spawnSync("sh", ["-c", find], { encoding: "utf8" }).stdout.trim();
      assert.ok(where, `${tool} is needed for this test`);
      symlinkSync(where, join(bin, tool));
    }
    const inner = [
      "ip link set lo down", // with the host's PATH: start from a loopback that is down
      `before=$(ip -o link show lo)`,
      `PATH=${bin}`,
      "command -v ip >/dev/null 2>&1 && exit 3",
      loopbackPart(ADDRESSES),
      loopbackPart(ADDRESSES), // twice: an address already there is left as it is
      `PATH=${process.env.PATH}`,
      'echo "$before"; ip -o link show lo; ip -o addr show dev lo',
    ].join("\n");
    const r = spawnSync("unshare", ["--net", "sh", "-c", inner], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const [before, after, ...addrs] = r.stdout.trim().split("\n");
    assert.doesNotMatch(before!, /<[^>]*\bUP\b/, `the loopback was down before: ${r.stdout}`);
    assert.match(after!, /<[^>]*\bUP\b/, `the loopback is up after: ${r.stdout}`);
    // Each on lo with a full-length prefix (nothing else of its subnet routed to loopback), once.
    assert.equal(addrs.filter((l) => / inet 192\.0\.2\.77\/32 /.test(l)).length, 1, r.stdout);
    assert.equal(addrs.filter((l) => / inet6 2001:db8::77\/128 /.test(l)).length, 1, r.stdout);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});
