import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { isolatedCommand, isolationScript } from "./private-shm.js";

test("a new namespace: unshare --net; a given one: nsenter, which execs unshare (the holder's pid stays)", () => {
  const own = isolatedCommand({ shmFrom: "/i/shm" }, ["criu", "restore"]);
  assert.deepEqual(own.slice(0, 3), ["unshare", "--net", "--pid"]);
  assert.deepEqual(own.slice(-3), ["stasis-restore", "criu", "restore"]);
  const given = isolatedCommand({ shmFrom: "/i/shm", joinNetns: "/run/netns/a" }, ["criu"]);
  assert.deepEqual(given.slice(0, 4), ["nsenter", "--net=/run/netns/a", "--", "unshare"]);
  assert.ok(!given.includes("--net"));
});

test("the set-up script is valid sh, quotes the folder, and execs CRIU last", () => {
  const script = isolationScript({ shmFrom: "/tmp/it's here" });
  assert.equal(spawnSync("sh", ["-n", "-c", script]).status, 0);
  assert.match(script, /cp -a '\/tmp\/it'\\''s here'\/\. \/dev\/shm\//);
  assert.equal(script.trim().split("\n").at(-1), 'exec "$@"');
});
