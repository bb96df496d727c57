/**
 * A server whose processes talk over TCP on the host's own address (as vLLM's torch.distributed store does unless
 * VLLM_HOST_IP is loopback), for real: the capture records the address; a restore on the
 * host's network, where the address exists, answers; replicas in namespaces of their own answer too (the address is
 * added to each namespace's loopback; without it CRIU fails with "Cannot assign requested address").
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { stasis, tempHome } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";

const { env, teardown } = tempHome();
const quiet = { ...env, STASIS_NO_DAEMON: "1" };
after(() => teardown(1));

const own = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === "IPv4" && !i.internal)?.address;

test(
  "a snapshot bound to the host's address restores on the host and in namespaces of its own",
  { skip: !own && "no IPv4 address but loopback" },
  async (t) => {
    t.after(() => stasis(["stop", "--all", "--grace", "1"], env));
    const { cap } = await captureExample("addr", env, {
      server: "two_process_server.py",
      startupSeconds: 0.2,
      serverArgs: ["--store-host", own!],
      canary: "/answer?q=canary",
    });
    assert.deepEqual(cap.json.manifest.addresses, [own]);
    const canary = cap.json.manifest.engine.canary.text as string;
    const canaryPath = "/answer?q=canary";

    const onHost = await stasis(["restore", "addr", "--json"], quiet);
    assert.equal(onHost.code, 0, onHost.output);
    assert.equal((await httpOk(onHost.json.instance.url + canaryPath)).body, canary);
    assert.equal((await stasis(["stop", onHost.json.instance.id], env)).code, 0);

    const restore = () => stasis(["restore", "addr", "--publish", "127.0.0.1", "--json"], quiet);
    const replicas = await Promise.all([restore(), restore()]);
    for (const r of replicas) {
      assert.equal(r.code, 0, r.output);
      assert.equal((await httpOk(r.json.instance.url + canaryPath)).body, canary);
    }
    for (const r of replicas) assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
  },
);
