import { test } from "node:test";
import assert from "node:assert/strict";
import { envPairs, num, oneOf } from "./args.js";
import { table, formatBytes } from "../text.js";

test("option readers name the option and what they expected", () => {
  assert.equal(num({ n: "3" }, "n", 1), 3);
  assert.equal(num({}, "n", 1), 1);
  assert.throws(() => num({ n: "x" }, "n", 1), /--n: expected a number, got "x"/);
  assert.throws(() => num({ n: "-1" }, "n", 1, { min: 0 }), /expected a number >= 0/);
  assert.equal(oneOf({ v: "size" }, "v", ["full", "size"] as const, "full"), "size");
  assert.throws(
    () => oneOf({ v: "all" }, "v", ["full", "size"] as const, "full"),
    /expected one of full, size, got "all"/,
  );
  assert.deepEqual(envPairs({ env: ["A=1", "B=x=y"] }, "env"), { A: "1", B: "x=y" });
  assert.throws(() => envPairs({ env: ["nope"] }, "env"), /expected KEY=VALUE/);
});

test("tables align, numbers to the right", () => {
  assert.equal(
    table([
      ["name", "size"],
      ["a", "1.0 GiB"],
      ["bbb", "12 B"],
    ]),
    "name     size\na     1.0 GiB\nbbb      12 B",
  );
  assert.equal(formatBytes(1536), "1.5 KiB");
});
