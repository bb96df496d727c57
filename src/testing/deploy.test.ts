/**
 * The deployment recipes under deploy/ are checked, not just written: every Kubernetes manifest against the
 * Kubernetes API's schemas (kubernetes-models, pinned in package.json: the OpenAPI schemas of its Kubernetes release,
 * offline), and the systemd units with `systemd-analyze verify` where this machine has it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { MAIN, REPO } from "./cli.js";

const KUBE = join(REPO, "deploy", "kubernetes");
const SYSTEMD = join(REPO, "deploy", "systemd");

/** The kubernetes-models module of an apiVersion: "v1" -> v1, "apps/v1" -> apps/v1. */
async function modelFor(apiVersion: string, kind: string): Promise<new (o: object) => { validate(): void }> {
  const mod = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, unknown>;
  const model = mod[kind];
  assert.equal(typeof model, "function", `no schema for ${apiVersion} ${kind}`);
  return model as new (o: object) => { validate(): void };
}

test("every Kubernetes manifest under deploy/kubernetes is valid against the API's schemas", async () => {
  const files = readdirSync(KUBE).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 2, `manifests: ${files.join(", ")}`);
  let checked = 0;
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(join(KUBE, file), "utf8"))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      const obj = doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string } };
      const Model = await modelFor(obj.apiVersion, obj.kind);
      assert.doesNotThrow(() => new Model(obj).validate(), `${file}: ${obj.kind} ${obj.metadata.name}`);
      checked++;
    }
  }
  assert.ok(checked >= 4, `${checked} objects checked`);
});

test("the schema check fails a manifest that is wrong (a port given as words)", async () => {
  const Model = await modelFor("v1", "Pod");
  const container = { name: "a", image: "b", ports: [{ containerPort: "eight" }] };
  const bad = { apiVersion: "v1", kind: "Pod", metadata: { name: "x" }, spec: { containers: [container] } };
  assert.throws(() => new Model(bad).validate(), /containerPort must be integer/);
});

test("the systemd units pass systemd-analyze verify", (t) => {
  if (spawnSync("systemd-analyze", ["--version"]).status !== 0) return t.skip("no systemd-analyze on this machine");
  // The units name the installed CLI (/usr/local/bin/stasis, setup.sh's link); verify checks that it is executable,
  // so the copies checked here name this build's instead.
  const dir = mkdtempSync(join(tmpdir(), "stasis-units-"));
  try {
    const bin = join(dir, "stasis");
    writeFileSync(bin, `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`);
    chmodSync(bin, 0o755);
    for (const unit of readdirSync(SYSTEMD).filter((f) => f.endsWith(".service"))) {
      const name = unit.endsWith("@.service") ? unit.replace("@.service", "@llama.service") : unit;
      const text = readFileSync(join(SYSTEMD, unit), "utf8");
      writeFileSync(join(dir, name), text.replaceAll("/usr/local/bin/stasis", bin));
      const r = spawnSync("systemd-analyze", ["verify", "--man=no", join(dir, name)], { encoding: "utf8" });
      assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), "", `${unit} has warnings: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
