import { test } from "node:test";
import assert from "node:assert/strict";
import { vllmLaunchDefaults } from "./vllm-command.js";

test("a vLLM server is captured with its host address on loopback unless the caller set one", () => {
  const serve = ["vllm", "serve", "/m", "--enable-sleep-mode"];
  assert.deepEqual(vllmLaunchDefaults(serve, {}), { VLLM_HOST_IP: "127.0.0.1" });
  assert.deepEqual(vllmLaunchDefaults(["python3", "-m", "vllm.entrypoints.openai.api_server"], {}), {
    VLLM_HOST_IP: "127.0.0.1",
  });
  assert.deepEqual(vllmLaunchDefaults(serve, { VLLM_HOST_IP: "10.0.0.5" }), {}, "the caller's own");
  assert.deepEqual(vllmLaunchDefaults(["sh", "-c", "VLLM_HOST_IP=10.0.0.5 vllm serve /m"], {}), {}, "set in a shell");
  assert.deepEqual(vllmLaunchDefaults(["python3", "my_server.py"], {}), {}, "not vLLM's own server");
});
