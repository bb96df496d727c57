import assert from "node:assert/strict";
import { test } from "node:test";
import { table } from "./text.js";

test("table: numeric columns align right, text columns left", () => {
  assert.equal(
    table([
      ["file", "size"],
      ["a", "1.0 KiB"],
      ["long-name", "10.0 MiB"],
    ]),
    ["file           size", "a           1.0 KiB", "long-name  10.0 MiB"].join("\n"),
  );
});

test("table: 200,000 rows (a residency of /usr) render without overflowing the call stack", () => {
  const rows = [["file", "size"], ...Array.from({ length: 200_000 }, (_, i) => [`/usr/lib/f${i}`, `${i} B`])];
  const lines = table(rows).split("\n");
  assert.equal(lines.length, 200_001);
  assert.equal(lines[200_000], "/usr/lib/f199999  199999 B");
});
