import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { StasisError } from "../errors.js";
import { knobValue, loadConfig, readConfig, requestKnobs, withRequest } from "./config.js";
import { KNOBS } from "./knobs.js";
import { INTERNAL, REMOVED } from "./internal.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

test("every knob has its default where unset or empty, and its value where set", () => {
  const { config, sources } = readConfig({
    STASIS_WORKING_SET: "",
    STASIS_CHUNK_CACHE_GB: "8",
    STASIS_CRIU_NETWORK_LOCK: "iptables",
  });
  assert.equal(config.workingSet, true);
  assert.equal(sources.workingSet, "default");
  assert.equal(config.chunkCacheGb, 8);
  assert.equal(sources.chunkCacheGb, "env");
  assert.equal(config.criuNetworkLock, "iptables");
  assert.equal(config.remotePartMb, undefined, "no default of its own: pulls and pushes each have theirs");
  assert.equal(config.home, "/var/lib/stasis");
  for (const [off, on] of [
    ["0", "1"],
    ["false", "true"],
    ["no", "yes"],
    ["OFF", "On"],
  ]) {
    assert.equal(loadConfig({ STASIS_WORKING_SET: off }).workingSet, false);
    assert.equal(loadConfig({ STASIS_WORKING_SET: on }).workingSet, true);
  }
});

test("a bad value is E_USAGE naming the knob, the value and what was expected (it used to be ignored, or NaN)", () => {
  const cases: [string, string, RegExp][] = [
    ["STASIS_MAX_CACHE_BYTES", "4G", /an integer >= 0/],
    ["STASIS_WORKING_SET", "maybe", /1 or 0/],
    ["STASIS_REMOTE_CONCURRENCY", "65", /from 1 to 64/],
    ["STASIS_CRIU_NETWORK_LOCK", "pf", /one of nftables, iptables/],
    ["STASIS_HOME", "relative/home", /an absolute path/],
    ["STASIS_CHUNK_CACHE_GB", "1.5", /an integer >= 0/],
  ];
  for (const [knob, value, expected] of cases) {
    assert.throws(
      () => readConfig({ [knob]: value }),
      (e: unknown) =>
        e instanceof StasisError &&
        e.code === "E_USAGE" &&
        e.message.includes(`${knob}=${JSON.stringify(value)}`) &&
        expected.test(e.message) &&
        e.hint !== undefined &&
        e.details?.knob === knob,
      `${knob}=${value}`,
    );
  }
  assert.throws(() => knobValue("home", { STASIS_HOME: "x" }), /STASIS_HOME/);
});

test("a request carries the restore knobs its user set; the daemon lays them over its own, and refuses the others", () => {
  const client = readConfig({ STASIS_WORKING_SET: "0", STASIS_HOME: "/srv/stasis", STASIS_NO_DAEMON: "" });
  assert.deepEqual(requestKnobs(client), { STASIS_WORKING_SET: "0" }, "not STASIS_HOME: the daemon's store is its own");
  const daemon = readConfig({ STASIS_CRIU_NETWORK_LOCK: "iptables" });
  const merged = withRequest(daemon, requestKnobs(client));
  assert.equal(merged.config.workingSet, false);
  assert.equal(merged.sources.workingSet, "request");
  assert.equal(merged.config.criuNetworkLock, "iptables");
  assert.equal(merged.sources.criuNetworkLock, "env");
  assert.equal(daemon.config.workingSet, true, "the daemon's own settings are left as they were");
  assert.equal(withRequest(daemon, undefined), daemon);
  assert.throws(
    () => withRequest(daemon, { STASIS_HOME: "/tmp" }),
    (e: unknown) => e instanceof StasisError && e.code === "E_USAGE",
  );
  assert.throws(() => withRequest(daemon, { STASIS_NOPE: "1" }), /cannot set STASIS_NOPE/);
  assert.throws(() => withRequest(daemon, { STASIS_WORKING_SET: "2" }), /from the request/);
});

test("the knobs: about ten a user sets, each documented, none also listed as internal", () => {
  const names = Object.values(KNOBS).map((k) => k.env);
  assert.ok(names.length <= 11, `${names.length} knobs`);
  assert.equal(new Set(names).size, names.length);
  for (const k of Object.values(KNOBS)) assert.ok(k.doc.length > 10 && k.expected.length > 0, k.env);
  for (const v of INTERNAL) assert.ok(!names.includes(v.env), `${v.env} is both a knob and internal`);
  for (const v of REMOVED) assert.ok(!names.includes(v.env) && v.instead.length > 0, `${v.env} is removed`);
});

test("the engine side's variables are the ones python/stasis_engine/config.py reads, by the same names", () => {
  const py = readFileSync(join(root, "python", "stasis_engine", "config.py"), "utf8");
  const read = [...py.matchAll(/Variable\(\s*"(STASIS_[A-Z0-9_]+)"/g)].map((m) => m[1]).sort();
  const listed = INTERNAL.filter((v) => v.readBy === "engine side")
    .map((v) => v.env)
    .sort();
  assert.deepEqual(read, listed);
});

/** Where src/ may read a STASIS_* variable itself: the config module and test support. */
const MAY_READ = (path: string) =>
  path.startsWith("config/") ||
  path.startsWith("testing/") ||
  /(^|\/)_test[a-z]*\.ts$/.test(path) ||
  /\.[gi]?test\.ts$/.test(path);

test("no code in src/ reads a STASIS_* variable but the config module (and test support)", () => {
  const src = join(root, "src");
  const reads = /(process\.)?env(\.STASIS_|\[\s*["'`]STASIS_)|env(Int|Choice)\(\s*["'`]STASIS_/;
  const offenders: string[] = [];
  (function walk(dir: string) {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".ts") && !MAY_READ(relative(src, path))) {
        readFileSync(path, "utf8")
          .split("\n")
          .forEach((line, i) => reads.test(line) && offenders.push(`${relative(src, path)}:${i + 1}: ${line.trim()}`));
      }
    }
  })(src);
  assert.deepEqual(offenders, []);
});
