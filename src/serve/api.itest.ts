/**
 * The daemon's HTTP API for real (root, CRIU, the example server): a `stasis serve` process on its socket and on TCP
 * with a token. A capture and a restore over HTTP, the instance listed and stopped, /metrics scraped after them (the
 * restore's phases in its histogram, a failed restore counted by its code), every answer valid against
 * schemas/openapi.json; the CLI's ps, capture and stop going through the daemon; its JSON log.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES } from "../testing/cli.js";
import { startDaemon } from "../testing/daemon.js";
import { api, assertAnswer, type At } from "../testing/daemon-api.js";
import { series } from "../testing/prometheus.js";
import { httpOk } from "../engines/http-client.js";
import { freePort, listenersOn } from "../proc/net.js";

const { home, env, teardown } = tempHome();
after(() => teardown(1));

test("capture, restore, list, stop and metrics over HTTP, on the socket and on TCP with a token", async () => {
  const token = "itest-token-0123456789abcdef";
  const tokenFile = join(home, "token");
  writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
  const daemon = await startDaemon(
    env,
    ["--listen", "127.0.0.1:0", "--token-file", tokenFile, "--log-format", "json"],
    /listening on tcp 127\.0\.0\.1:(\d+)/,
  );
  try {
    const port = Number(daemon.listening[1]);
    const unix: At = { socket: join(home, "stasisd.sock") };
    const tcp: At = { port, token };

    // A capture over the socket: events as they happen, then the result.
    const serverPort = await freePort();
    const base = `http://127.0.0.1:${serverPort}`;
    const captured = await api(unix, "POST", "/v1/captures", {
      name: "api",
      argv: ["python3", "slow_server.py", "--port", String(serverPort), "--startup-seconds", "0.3"],
      cwd: EXAMPLES,
      readyUrl: `${base}/health`,
      canary: { method: "GET", path: "/answer?q=api" },
    });
    assert.equal(captured.status, 200, captured.text);
    for (const line of captured.lines) assertAnswer(line, "CaptureLine");
    const capture = captured.lines.at(-1).result;
    assert.ok(capture, captured.text.slice(-2000));
    assert.equal(capture.manifest.name, "api");
    assert.ok(captured.lines.some((l) => l.event?.type === "phase-end" && l.event.phase === "criu-dump"));

    // Refused without the token, or with a wrong one; nothing restored.
    for (const bad of [{ port }, { port, token: "x".repeat(token.length) }]) {
      const r = await api(bad, "POST", "/v1/restore", {
        name: "api",
        verify: "auto",
        prefetch: "auto",
        readyTimeoutMs: 60_000,
      });
      assert.equal(r.status, 401);
      assert.equal(r.json.error.code, "E_UNAUTHORIZED");
    }
    assert.deepEqual((await api(unix, "GET", "/v1/instances")).json.instances, []);

    // A restore over TCP with the token: serving, its canary the captured one.
    const restored = await api(tcp, "POST", "/v1/restore", {
      name: "api",
      verify: "auto",
      prefetch: "auto",
      readyTimeoutMs: 60_000,
    });
    for (const line of restored.lines) assertAnswer(line, "RestoreLine");
    const restore = restored.lines.at(-1).result;
    assert.ok(restore, restored.text.slice(-2000));
    assert.equal((await httpOk(`${base}/answer?q=api`)).body, capture.manifest.engine.canary.text);

    // A second restore of it while it serves fails: counted by its code.
    const second = await api(unix, "POST", "/v1/restore", {
      name: "api",
      verify: "auto",
      prefetch: "none",
      readyTimeoutMs: 60_000,
    });
    const code = second.lines.at(-1).error?.code;
    assert.ok(code, second.text.slice(-2000));

    const listed = await api(tcp, "GET", "/v1/instances");
    assertAnswer(listed.json, "Instances");
    assert.deepEqual(
      listed.json.instances.map((i: { id: string; status: string }) => [i.id, i.status]),
      [[restore.instance.id, "serving"]],
    );

    const metrics = await api(tcp, "GET", "/metrics");
    assert.equal(metrics.status, 200);
    for (const p of restore.phases.filter((x: { ok: boolean }) => x.ok)) {
      assert.ok(
        series(metrics.text, "stasis_restore_phase_seconds_count", { phase: p.name })! >= 1,
        `restore phase ${p.name}`,
      );
    }
    assert.ok(series(metrics.text, "stasis_restore_phase_seconds_count", { phase: "criu-restore" })! >= 1);
    for (const p of capture.phases.filter((x: { ok: boolean }) => x.ok)) {
      assert.ok(
        series(metrics.text, "stasis_capture_phase_seconds_count", { phase: p.name })! >= 1,
        `capture phase ${p.name}`,
      );
    }
    assert.equal(series(metrics.text, "stasis_restore_seconds_count"), 1);
    assert.equal(series(metrics.text, "stasis_capture_seconds_count"), 1);
    assert.equal(series(metrics.text, "stasis_failures_total", { operation: "restore", code }), 1);
    assert.equal(series(metrics.text, "stasis_instances", { state: "serving" }), 1);

    const stopped = await api(unix, "DELETE", `/v1/instances/${restore.instance.id}?graceMs=5000`);
    assert.equal(stopped.status, 200, stopped.text);
    assertAnswer(stopped.json, "Stopped");
    assert.deepEqual(stopped.json, { id: restore.instance.id, result: "terminated" });
    assert.deepEqual((await api(unix, "GET", "/v1/instances?all=true")).json.instances, []);
    await assert.rejects(httpOk(`${base}/answer?q=api`), "the server is gone");

    // The CLI goes through the daemon: a capture whose server needs the CLI's environment (the daemon's lacks
    // API_ITEST_PORT), kept running, listed by `ps` and stopped by `stop`, all "via": "daemon".
    const cliPort = await freePort();
    const cliCapture = await stasis(
      [
        "capture",
        "api-cli",
        "--json",
        "--leave-running",
        "--ready-url",
        `http://127.0.0.1:${cliPort}/health`,
        "--canary-url",
        `http://127.0.0.1:${cliPort}/answer?q=cli`,
        "--cwd",
        EXAMPLES,
        "--",
        "sh",
        "-c",
        'exec python3 slow_server.py --port "$API_ITEST_PORT" --startup-seconds 0.2',
      ],
      { ...env, API_ITEST_PORT: String(cliPort) },
    );
    assert.equal(cliCapture.code, 0, cliCapture.output);
    assert.equal(cliCapture.json.via, "daemon");
    const ps = await stasis(["ps", "--json"], env);
    assert.equal(ps.json.via, "daemon");
    assert.deepEqual(
      ps.json.instances.map((i: { id: string }) => i.id),
      [cliCapture.json.instance.id],
    );
    const stop = await stasis(["stop", cliCapture.json.instance.id, "--json"], env);
    assert.equal(stop.code, 0, stop.output);
    assert.equal(stop.json.via, "daemon");
    assert.equal(stop.json.stopped[0].id, cliCapture.json.instance.id);
  } finally {
    await daemon.stop();
  }
  assert.equal(await daemon.exited, 0, daemon.log().slice(-3000));
  // The log: one JSON object a line, the requests among them with where they came from.
  const records = daemon
    .log()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const requests = records.filter((r) => r.kind === "request");
  assert.ok(requests.some((r) => r.url === "/v1/restore" && r.via === "tcp" && r.status === 401));
  assert.ok(requests.some((r) => r.url === "/v1/captures" && r.via === "unix" && r.status === 200));
  assert.ok(records.some((r) => r.kind === "event" && r.operation === "capture" && r.event.phase === "criu-dump"));
});

test("a client that goes away mid-capture aborts it: the server is stopped, nothing is kept", async () => {
  const daemon = await startDaemon(env, ["--log-format", "json"]);
  const socket = join(home, "stasisd.sock");
  try {
    const port = await freePort();
    const body = JSON.stringify({
      name: "abandoned",
      argv: ["python3", "slow_server.py", "--port", String(port), "--startup-seconds", "30"],
      cwd: EXAMPLES,
      readyUrl: `http://127.0.0.1:${port}/health`,
      canary: { method: "GET", path: "/answer?q=x" },
    });
    // Hang up once the server is launched and the capture waits for it to be ready.
    await new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: socket, method: "POST", path: "/v1/captures", agent: false }, (res) => {
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          if (d.includes('"phase":"launch"') && d.includes('"phase-end"')) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
      req.end(body);
    });
    for (let i = 0; i < 250 && !/capture failed: E_INTERRUPTED/.test(daemon.log()); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.match(daemon.log(), /capture failed: E_INTERRUPTED/);
    assert.deepEqual((await api({ socket }, "GET", "/v1/instances?all=true")).json.instances, [], "no record left");
    assert.equal((await listenersOn(port)).length, 0, "the server is stopped");
    const metrics = await api({ socket }, "GET", "/metrics");
    assert.equal(series(metrics.text, "stasis_failures_total", { operation: "capture", code: "E_INTERRUPTED" }), 1);
    assert.equal(
      (await stasis(["ls", "--json"], env)).json.snapshots.filter((x: { name: string }) => x.name === "abandoned")
        .length,
      0,
    );
  } finally {
    await daemon.stop();
  }
  assert.equal(await daemon.exited, 0, daemon.log().slice(-3000));
});
