import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Events, recordTimeline } from "../events.js";
import { jobLine, stageWeights, WeightsKeeper, type StageInfo } from "./weights-stager.js";
import { assertValidContract } from "../testing/schemas.js";
import { until } from "../testing/wait.js";

/** Writes an executable shell script (the stand-ins for the engine's interpreter). */
async function script(path: string, body: string): Promise<string> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/**
 * A stand-in for the engine's interpreter: a shell script that keeps the job line it was given (job.json), prints
 * `lines` and runs `then` (REST: keeps what else comes on its stdin until it closes, in rest.txt).
 */
function fakePython(dir: string, lines: string[], then = "exit 0"): Promise<string> {
  const keep = `read -r job; printf '%s\\n' "$job" > ${join(dir, "job.json")}`;
  const rest = `cat > ${join(dir, "rest.tmp")}; mv ${join(dir, "rest.tmp")} ${join(dir, "rest.txt")}`;
  return script(
    join(dir, "python"),
    `${keep}\n${lines.map((l) => `echo '${l}'`).join("\n")}\n${then.replace("REST", rest)}`,
  );
}

/** The file's text once it exists (a stand-in writes it when its stdin closes). */
async function eventually(path: string): Promise<string> {
  let text: string | undefined;
  await until(
    `${path} to appear`,
    async () => (text = await readFile(path, "utf8").catch(() => undefined)) !== undefined,
  );
  return text!;
}

function info(python: string): StageInfo {
  return {
    python,
    path: "/opt/engine",
    arenaSize: 4096,
    tensors: [{ name: "w", offset: 0, nbytes: 4096, dtype: "bfloat16", shape: [2048] }],
  };
}

/** A job for a stand-in interpreter, its socket in `dir`. */
function jobFor(python: string, dir: string) {
  return { info: info(python), weightsFile: "/w", gpu: "GPU-1", dir, reserveBytes: 0, events: new Events() };
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stasis-stager-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a stager that fills the memory gives its socket, and its fill is a phase with the bytes", () =>
  withDir(async (dir) => {
    const python = await fakePython(dir, ['{"event": "ready", "bytes": 4096, "seconds": 0.2}'], "exec sleep 30");
    const events = new Events();
    const timeline = recordTimeline(events);
    const staged = stageWeights({
      info: info(python),
      weightsFile: "/snap/w",
      gpu: "GPU-1",
      dir,
      reserveBytes: 99,
      events,
    });
    try {
      assert.deepEqual(await staged.ready(), { socket: join(dir, "weights-stage.sock") });
      const job = JSON.parse(await readFile(join(dir, "job.json"), "utf8")) as Record<string, unknown>;
      assert.deepEqual(
        { file: job.file, gpu: job.gpu, arena: job.arena_size, reserve: job.reserve_bytes, socket: job.socket },
        { file: "/snap/w", gpu: "GPU-1", arena: 4096, reserve: 99, socket: join(dir, "weights-stage.sock") },
      );
      assert.equal(timeline.phases.find((p) => p.name === "stage-weights")?.bytes, 4096);
    } finally {
      staged.stop();
    }
  }));

test("a stager holds its reads for the restore's go: the job says so, go() sends the go line and closes its input", () =>
  withDir(async (dir) => {
    const python = await fakePython(dir, ['{"event": "ready", "bytes": 4096, "seconds": 0.2}'], "REST; exec sleep 30");
    const staged = stageWeights(jobFor(python, dir));
    try {
      assert.ok("socket" in (await staged.ready()));
      assert.equal((JSON.parse(await eventually(join(dir, "job.json"))) as { hold: unknown }).hold, true);
      staged.go();
      staged.go(); // once only
      assert.equal(await eventually(join(dir, "rest.txt")), '{"op":"go"}\n');
    } finally {
      staged.stop();
    }
  }));

test("a stager's error is the reason there are no staged weights", () =>
  withDir(async (dir) => {
    const python = await fakePython(
      dir,
      ['{"event": "error", "error": {"code": "gpu_memory", "message": "1.0 GiB free", "hint": null}}'],
      "exit 1",
    );
    const staged = stageWeights(jobFor(python, dir));
    assert.deepEqual(await staged.ready(), { reason: "gpu_memory: 1.0 GiB free" });
  }));

test("a stager that dies without a word, or cannot start, says so", () =>
  withDir(async (dir) => {
    const python = await fakePython(dir, ["not json"], "echo 'Traceback: boom' >&2; exit 3");
    const died = await stageWeights(jobFor(python, dir)).ready();
    assert.ok("reason" in died && /status 3.*boom/.test(died.reason), JSON.stringify(died));
    const missing = await stageWeights(jobFor(join(dir, "no-python"), dir)).ready();
    assert.ok("reason" in missing && /cannot start|exited/.test(missing.reason), JSON.stringify(missing));
  }));

/** A keeper stand-in: answers every job line with a ready line carrying the job's id. */
function fakeKeeper(dir: string): Promise<string> {
  return script(
    join(dir, "python"),
    [
      "while read line; do",
      `  id=$(echo "$line" | sed 's/.*"id":"\\([^"]*\\)".*/\\1/')`,
      `  case "$line" in`,
      `    *'"op":"release"'*) echo "{\\"event\\": \\"released\\", \\"id\\": \\"$id\\", \\"images\\": 1}" ;;`,
      `    *'"op":"go"'*) echo "$line" >> ${join(dir, "go.txt")} ;;`,
      `    *'"file":"/missing"'*) echo "{\\"event\\": \\"pin-failed\\", \\"id\\": \\"$id\\", \\"message\\": \\"FileNotFoundError: /missing\\"}" ;;`,
      `    *'"op":"pin"'*) echo "{\\"event\\": \\"pinned\\", \\"id\\": \\"$id\\", \\"bytes\\": 4096, \\"seconds\\": 0.2, \\"already\\": false}" ;;`,
      `    *) echo "{\\"event\\": \\"ready\\", \\"id\\": \\"$id\\", \\"bytes\\": 4096, \\"seconds\\": 0.1}" ;;`,
      "  esac",
      "done",
    ].join("\n"),
  );
}

/** A keeper on the stand-in (fakeKeeper) for `body`, closed after it. */
function withFakeKeeper(body: (keeper: WeightsKeeper, python: string, dir: string) => Promise<void>): Promise<void> {
  return withDir(async (dir) => {
    const python = await fakeKeeper(dir);
    const keeper = WeightsKeeper.start(info(python));
    try {
      await body(keeper, python, dir);
    } finally {
      await keeper.close();
    }
  });
}

test("a keeper takes jobs one line each and answers each by its id", () =>
  withFakeKeeper(async (keeper, python, dir) => {
    const a = keeper.stage(jobFor(python, join(dir, "a")));
    const b = keeper.stage(jobFor(python, join(dir, "b")));
    assert.deepEqual(await b.ready(), { socket: join(dir, "b", "weights-stage.sock") });
    assert.deepEqual(await a.ready(), { socket: join(dir, "a", "weights-stage.sock") });
    assert.equal(keeper.alive(), true);
  }));

test("a keeper's job gets its go by its id, and a job given up is sent its go before the keeper is poked", () =>
  withFakeKeeper(async (keeper, python, dir) => {
    const a = keeper.stage(jobFor(python, join(dir, "a")));
    assert.ok("socket" in (await a.ready()));
    a.go();
    assert.equal(await eventually(join(dir, "go.txt")), '{"op":"go","id":"job-1"}\n');
    const b = keeper.stage(jobFor(python, join(dir, "b")));
    b.stop(); // before its ready: given up
    await until("job-2's go", async () => (await readFile(join(dir, "go.txt"), "utf8")).includes("job-2"));
    assert.equal(await readFile(join(dir, "go.txt"), "utf8"), '{"op":"go","id":"job-1"}\n{"op":"go","id":"job-2"}\n');
  }));

test("what a keeper says after a job's hand-off (its image pinned, or not) is logged, and the job is unaffected", () =>
  withDir(async (dir) => {
    const say = (line: string) => `  echo '${line}'`;
    const python = await script(
      join(dir, "python"),
      [
        "read line",
        say('{"event": "ready", "id": "job-1", "bytes": 4096, "seconds": 0.1}'),
        say('{"event": "handed-off", "id": "job-1", "seconds": 0.2}'),
        say('{"event": "pinned", "id": "job-1", "bytes": 6400000000, "seconds": 2.5}'),
        say('{"event": "pin-failed", "id": "job-1", "message": "StasisEngineError: out of memory"}'),
        "read line",
      ].join("\n"),
    );
    const logged: string[] = [];
    const keeper = WeightsKeeper.start(info(python), (m, level) => logged.push(`${level}: ${m}`));
    try {
      const job = keeper.stage(jobFor(python, dir));
      assert.deepEqual(await job.ready(), { socket: join(dir, "weights-stage.sock") });
      await until("two lines logged", () => logged.length >= 2);
      assert.deepEqual(logged, [
        "info: weights keeper: pinned 6.40 GB of weights in 2.50 s, for the next restore",
        "warn: weights keeper: could not pin the weights (StasisEngineError: out of memory); the next restore reads the file again",
      ]);
      assert.equal(keeper.alive(), true);
    } finally {
      await keeper.close();
    }
  }));

test("a keeper pins a file ahead when asked, answers by the pin's id, and says why it could not", () =>
  withFakeKeeper(async (keeper, python) => {
    const job = { info: info(python), weightsFile: "/w", gpu: "GPU-1" };
    assert.deepEqual(await keeper.pin(job), { bytes: 4096, seconds: 0.2, already: false });
    await assert.rejects(
      keeper.pin({ ...job, weightsFile: "/missing" }),
      /could not pin the weights: FileNotFoundError: \/missing/,
    );
    assert.equal(keeper.alive(), true, "a failed pin leaves the keeper up");
  }));

test("a pin sent to a keeper that has ended fails with why", () =>
  withDir(async (dir) => {
    const keeper = WeightsKeeper.start(info(await script(join(dir, "dead"), "exit 3")));
    try {
      await assert.rejects(keeper.pin({ info: info("x"), weightsFile: "/w", gpu: "GPU-1" }), /weights keeper ended/);
    } finally {
      await keeper.close();
    }
  }));

test("a keeper that dies ends its jobs with the reason, and the daemon's set starts a new one", () =>
  withDir(async (dir) => {
    const { weightsKeepers } = await import("./weights-keepers.js");
    const dead = await script(join(dir, "dead"), "exit 3");
    let started = 0;
    const set = weightsKeepers(
      () => undefined,
      2,
      (info) => (started++, WeightsKeeper.start(info)),
    );
    try {
      const job = jobFor(dead, dir);
      const first = await set.stage(job).ready();
      assert.ok("reason" in first && /exited \(status 3\)/.test(first.reason), JSON.stringify(first));
      await set.stage(job).ready();
      assert.equal(started, 2);
    } finally {
      await set.close();
    }
  }));

test("releasing the daemon's keepers frees their weights and keeps them up; closing ends them", () =>
  withDir(async (dir) => {
    const { weightsKeepers } = await import("./weights-keepers.js");
    const python = await fakeKeeper(dir);
    const started: ReturnType<typeof WeightsKeeper.start>[] = [];
    const set = weightsKeepers(
      () => undefined,
      2,
      (info) => {
        const k = WeightsKeeper.start(info);
        started.push(k);
        return k;
      },
    );
    try {
      assert.equal(await set.release(), 0, "nothing to release before a restore");
      assert.ok("socket" in (await set.stage(jobFor(python, join(dir, "a"))).ready()));
      assert.equal(await set.release(), 1, "the keeper answered that it freed its image");
      assert.equal(started[0]!.alive(), true, "the keeper stays up after a release");
      assert.ok("socket" in (await set.stage(jobFor(python, join(dir, "b"))).ready()));
      assert.equal(started.length, 1, "the next restore uses the same keeper");
      await set.close();
      assert.equal(started[0]!.alive(), false, "closing ends the keeper's process before it resolves");
    } finally {
      await set.close();
    }
  }));

test("a keeper's release times out when it does not answer, and resolves 0 once the keeper has ended", () =>
  withDir(async (dir) => {
    const silent = await script(join(dir, "silent"), "while read line; do :; done"); // answers nothing, ends with stdin
    const keeper = WeightsKeeper.start(info(silent));
    await assert.rejects(keeper.release(200), /did not release its weights within 200 ms/);
    const asked = keeper.release(10_000);
    await keeper.close();
    assert.equal(await asked, 0, "ended while asked: its pinned memory is gone with it");
    assert.equal(await keeper.release(), 0, "an ended keeper has nothing to release");
  }));

test("a restore's job lines, for an arena and for extents, are valid against the stage-job contract", () => {
  const arena = JSON.parse(jobLine(jobFor("/usr/bin/python3", "/run/i"), "/run/i/s.sock")) as unknown;
  assertValidContract(arena, "stage-job");
  const pool = { ...info("/usr/bin/python3"), extents: [{ address: 0x7f0000000000, size: 4096 }] };
  const extents = JSON.parse(jobLine({ ...jobFor("/p", "/d"), info: pool }, "/d/s.sock", "job-1")) as unknown;
  assertValidContract(extents, "stage-job");
  assert.deepEqual(Object.keys(extents as object).sort(), [
    "extents",
    "file",
    "gpu",
    "hold",
    "id",
    "reserve_bytes",
    "socket",
  ]);
});

test("a stager launched when the GPU is free starts only then, with the go it was given before", async () => {
  const { launchedWhen } = await import("./weights-stager.js");
  const calls: string[] = [];
  const fake = () => ({
    ready: async () => ({ socket: "/s" }),
    go: () => void calls.push("go"),
    stop: () => void calls.push("stop"),
  });
  const launch = (() => (calls.push("launch"), fake())) as Parameters<typeof launchedWhen>[1];
  const job = {} as Parameters<typeof launch>[0];

  let free!: () => void;
  const staged = launchedWhen(new Promise<void>((r) => (free = r)), launch)(job);
  staged.go(); // CRIU is done before the other server sleeps
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(calls, [], "nothing started: the GPU's memory is the other's");
  free();
  assert.deepEqual(await staged.ready(), { socket: "/s" });
  assert.deepEqual(calls, ["launch", "go"]);

  // The GPU never freed (the other server's sleep failed): no stager at all, and ready says why.
  calls.length = 0;
  const never = Promise.reject(new Error("sleep failed"));
  const none = launchedWhen(never, launch)(job);
  assert.match(((await none.ready()) as { reason: string }).reason, /not freed/);
  // A restore that stops first: none started either.
  let later!: () => void;
  const stopped = launchedWhen(new Promise<void>((r) => (later = r)), launch)(job);
  stopped.stop();
  later();
  assert.match(((await stopped.ready()) as { reason: string }).reason, /no stager started/);
  assert.deepEqual(calls, []);
});
