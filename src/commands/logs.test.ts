import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recordInstance } from "../instances/instances.js";
import { stasis, tempHome } from "../testing/cli.js";
import { wholeCharacters } from "./logs.js";
import { until } from "../testing/wait.js";

const { home, env, cleanup } = tempHome();
test.after(cleanup);

/** A real process whose stderr goes to its instance's log, recorded the way capture and restore record one. */
async function instanceWriting(id: string, script: string) {
  const dir = join(home, "instances", id);
  mkdirSync(dir, { recursive: true });
  const stderr = join(dir, "stderr.log");
  const stdout = join(dir, "stdout.log");
  writeFileSync(stdout, "out line\n");
  writeFileSync(join(dir, "criu-restore.log"), "(00.000100) criu says hello\n");
  const child = spawn("sh", ["-c", `{ ${script}; } 2>>${stderr}`], { stdio: "ignore" });
  await recordInstance({
    id,
    snapshot: "snap",
    origin: "restore",
    pid: child.pid!,
    url: "http://127.0.0.1:1",
    createdAt: new Date().toISOString(),
    dir,
    stdout,
    stderr,
  });
  return child;
}

test("stasis logs ID prints the server's stderr; --stdout and --criu add the others under a heading each", async () => {
  const child = await instanceWriting("aaaa11112222", "echo started >&2; sleep 30");
  try {
    const stderr = join(home, "instances", "aaaa11112222", "stderr.log");
    await until("the server's first line", () => readFileSync(stderr, "utf8").includes("started"));
    const plain = await stasis(["logs", "aaaa"], env);
    assert.equal(plain.code, 0, plain.output);
    assert.equal(plain.stdout, "started\n");
    const all = await stasis(["logs", "aaaa11112222", "--stdout", "--criu"], env);
    assert.equal(
      all.stdout,
      `==> ${join(home, "instances/aaaa11112222/stdout.log")} <==\nout line\n\n==> ${join(home, "instances/aaaa11112222/criu-restore.log")} <==\n(00.000100) criu says hello\n`,
    );
    const json = await stasis(["logs", "aaaa", "--json"], env);
    assert.equal(json.json.schema, "stasis.logs/v1");
    assert.deepEqual(
      json.json.logs.map((l: { stream: string; text: string }) => [l.stream, l.text]),
      [["stderr", "started\n"]],
    );
    assert.equal(json.json.running, true);
    const both = await stasis(["logs", "aaaa", "-f", "--json"], env);
    assert.equal(both.code, 2, "-f and --json: one document cannot follow");
  } finally {
    child.kill("SIGKILL");
  }
});

test("stasis logs -f follows what is appended and ends when the instance ends", async () => {
  const child = await instanceWriting(
    "bbbb11112222",
    "echo one >&2; sleep 0.6; echo two >&2; sleep 0.6; echo three >&2",
  );
  const started = Date.now();
  const r = await stasis(["logs", "bbbb", "-f"], env, 20_000);
  assert.equal(r.code, 0, r.output);
  assert.equal(r.stdout, "one\ntwo\nthree\n");
  assert.ok(Date.now() - started >= 1000, "it waited for the lines written later");
  assert.notEqual(child.exitCode ?? child.signalCode, null, "the instance had ended");
});

test("an unknown instance is E_INSTANCE_NOT_FOUND", async () => {
  const r = await stasis(["logs", "nope"], env);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /no instance "nope"/);
});

test("a UTF-8 character cut by a read is left for the next read", () => {
  const buf = Buffer.from("aé€😀", "utf8"); // 1 + 2 + 3 + 4 bytes
  assert.equal(wholeCharacters(buf, buf.length), 10);
  assert.equal(wholeCharacters(buf, 9), 6, "three bytes of the four-byte emoji");
  assert.equal(wholeCharacters(buf, 5), 3, "two bytes of the euro sign");
  assert.equal(wholeCharacters(buf, 2), 1);
  assert.equal(wholeCharacters(buf, 1), 1);
});
