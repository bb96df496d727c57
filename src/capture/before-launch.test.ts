/**
 * The capture's checks before the server is launched (checkBeforeLaunch): each refusal says what to add. The
 * CLI-level test (capture.itest.ts) shows they come before any launch; these pin each rule.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBeforeLaunch, type LaunchPlan } from "./preflight.js";
import { StasisError } from "../errors.js";

const home = mkdtempSync(join(tmpdir(), "stasis-before-launch-"));
test.after(() => rmSync(home, { recursive: true, force: true }));
const canary = { method: "GET", path: "/" };
const VLLM = ["/venv/bin/vllm", "serve", "/models/m", "--port", "8000"];
const SLEEP = ["--enable-sleep-mode", "--worker-extension-cls", "stasis_engine.vllm.StasisWorkerExtension"];
const DEV = { VLLM_SERVER_DEV_MODE: "1" };
const plan = (p: Partial<LaunchPlan>): LaunchPlan => ({
  engine: "http",
  argv: ["python3", "s.py"],
  env: {},
  readyUrl: "http://127.0.0.1:1/health",
  canary,
  ...p,
});

async function refused(
  p: LaunchPlan,
  code: string,
  message: RegExp,
  hint?: RegExp,
  deps: { uid?: number; home?: string } = {},
) {
  await assert.rejects(checkBeforeLaunch(p, { uid: 0, home, ...deps }), (err: unknown) => {
    assert.ok(err instanceof StasisError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    if (hint) assert.match(err.hint ?? "", hint);
    return true;
  });
}

test("an http capture without a canary is refused up front, saying to pass --canary-url", async () => {
  await refused(
    plan({ canary: undefined }),
    "E_USAGE",
    /http capture needs a canary request \(--canary-url\)/,
    /pass --canary-url URL/,
  );
  await checkBeforeLaunch(plan({}), { uid: 0, home });
});

test("vLLM without --enable-sleep-mode is refused, with exactly what to add", async () => {
  await refused(
    plan({ engine: "vllm", argv: [...VLLM, SLEEP[1]!, SLEEP[2]!], env: DEV }),
    "E_USAGE",
    /lacks --enable-sleep-mode$/,
    /add --enable-sleep-mode to the vLLM command \(after `--`\).*--allow-full-image/,
  );
});

test("vLLM without VLLM_SERVER_DEV_MODE=1 is refused, saying to add --env VLLM_SERVER_DEV_MODE=1", async () => {
  await refused(
    plan({ engine: "vllm", argv: [...VLLM, ...SLEEP], env: {} }),
    "E_USAGE",
    /lacks VLLM_SERVER_DEV_MODE=1$/,
    /add --env VLLM_SERVER_DEV_MODE=1/,
  );
});

test("vLLM without stasis's worker extension (or with another) is refused, naming the class to pass", async () => {
  await refused(
    plan({ engine: "vllm", argv: [...VLLM, "--enable-sleep-mode"], env: DEV }),
    "E_USAGE",
    /lacks --worker-extension-cls$/,
    /add --worker-extension-cls stasis_engine\.vllm\.StasisWorkerExtension/,
  );
  await refused(
    plan({ engine: "vllm", argv: [...VLLM, "--enable-sleep-mode", "--worker-extension-cls=my.Ext"], env: DEV }),
    "E_USAGE",
    /lacks --worker-extension-cls$/,
    /replace --worker-extension-cls my\.Ext with/,
  );
});

test("a complete vLLM command passes: either module path, in a shell, or run as a module", async () => {
  await checkBeforeLaunch(plan({ engine: "vllm", argv: [...VLLM, ...SLEEP], env: DEV, canary: undefined }), {
    uid: 0,
    home,
  });
  const ext = ["--enable-sleep-mode", "--worker-extension-cls", "stasis_engine.vllm.extension.StasisWorkerExtension"];
  await checkBeforeLaunch(
    plan({ engine: "vllm", argv: ["python3", "-m", "vllm.entrypoints.openai.api_server", ...ext], env: DEV }),
    { uid: 0, home },
  );
  await checkBeforeLaunch(
    plan({ engine: "vllm", argv: ["sh", "-c", `VLLM_SERVER_DEV_MODE=1 exec ${[...VLLM, ...SLEEP].join(" ")}`] }),
    { uid: 0, home },
  );
  await refused(
    plan({ engine: "vllm", argv: ["sh", "-c", VLLM.join(" ")] }),
    "E_USAGE",
    /lacks --enable-sleep-mode, VLLM_SERVER_DEV_MODE=1, --worker-extension-cls$/,
  );
});

test("--allow-full-image captures vLLM without sleep mode (vLLM on the CPU); other servers on the vllm engine are not read", async () => {
  await checkBeforeLaunch(plan({ engine: "vllm", argv: VLLM, allowFullImage: true }), { uid: 0, home });
  await checkBeforeLaunch(plan({ engine: "vllm", argv: ["python3", "-m", "stasis_engine.reference", "serve"] }), {
    uid: 0,
    home,
  });
});

test("a capture as a user other than root is refused before anything starts", async () => {
  await refused(plan({}), "E_PERMISSION", /capture needs root \(running as uid 1000\)/, /as root/, { uid: 1000 });
});

test("a store that cannot be created is refused before the launch, and nothing is written", async () => {
  const file = join(home, "a-file");
  writeFileSync(file, "");
  await refused(
    plan({}),
    "E_STORE_UNUSABLE",
    /cannot hold the store: a part of .* is a file, not a folder/,
    /STASIS_HOME/,
    {
      home: join(file, "home"),
    },
  );
  assert.deepEqual(readdirSync(home), ["a-file"]); // nothing was created, in the refused store or beside it
});

test("the ready URL's port held by a listener is refused before the launch, naming the process", async () => {
  const held = createServer().listen(0, "127.0.0.1");
  await once(held, "listening");
  try {
    const port = (held.address() as { port: number }).port;
    await refused(
      plan({ readyUrl: `http://127.0.0.1:${port}/health` }),
      "E_ADDRESS_IN_USE",
      new RegExp(
        `port ${port} of the ready URL is already taken: 127\\.0\\.0\\.1:${port} is listening \\(pid ${process.pid}`,
      ),
      /another port/,
    );
  } finally {
    held.close();
  }
});
