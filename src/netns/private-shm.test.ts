import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { addressesUp, isolatedCommand, isolationScript } from "./private-shm.js";
import type { StasisError } from "../errors.js";

test("a new namespace: unshare --net; a given one: nsenter, which execs unshare (the holder's pid stays)", () => {
  const own = isolatedCommand({ shmFrom: "/i/shm", addresses: [] }, ["criu", "restore"]);
  assert.deepEqual(own.slice(0, 3), ["unshare", "--net", "--pid"]);
  assert.deepEqual(own.slice(-3), ["stasis-restore", "criu", "restore"]);
  const given = isolatedCommand({ shmFrom: "/i/shm", addresses: [], joinNetns: "/run/netns/a" }, ["criu"]);
  assert.deepEqual(given.slice(0, 4), ["nsenter", "--net=/run/netns/a", "--", "unshare"]);
  assert.ok(!given.includes("--net"));
});

test("the set-up script is valid sh, quotes the folder, and execs CRIU last", () => {
  const script = isolationScript({ shmFrom: "/tmp/it's here", addresses: ["192.0.2.7", "2001:db8:0:0:0:0:0:7"] });
  assert.equal(spawnSync("sh", ["-n", "-c", script]).status, 0);
  assert.match(script, /ip addr replace 192\.0\.2\.7\/32 dev lo; ip addr replace 2001:db8:0:0:0:0:0:7\/128 dev lo/);
  assert.match(script, /cp -a '\/tmp\/it'\\''s here'\/\. \/dev\/shm\//);
  assert.equal(script.trim().split("\n").at(-1), 'exec "$@"');
});

test("the netlink fallback is valid Python; an address that is not one is refused before any script runs", () => {
  const script = addressesUp(["192.0.2.7"]);
  const code = /python3 -c '([^']*)'/.exec(script)?.[1];
  assert.ok(code, script);
  assert.equal(spawnSync("python3", ["-c", `import ast, sys; ast.parse(sys.stdin.read())`], { input: code }).status, 0);
  assert.throws(
    () => addressesUp(["192.0.2.7; reboot"]),
    (e: StasisError) => e.code === "E_MANIFEST_INVALID",
  );
});
