import { test } from "node:test";
import assert from "node:assert/strict";
import { slices } from "./disk.js";

test("the files are cut into about as many equal slices as streams, never across a file; small files go together", () => {
  const cut = slices([{ path: "a", size: 10 }, { path: "b", size: 25 }, { path: "c", size: 0 }], 7); // 5 bytes each
  assert.deepEqual(cut.slices.map((x) => `${x.path}:${x.offset}+${x.length}`), ["a:0+5", "a:5+5", "b:0+5", "b:5+5", "b:10+5", "b:15+5", "b:20+5"]);
  assert.deepEqual(cut.small, []);
  const mixed = slices([{ path: "big", size: 1000 }, { path: "tiny1", size: 10 }, { path: "tiny2", size: 20 }], 4);
  assert.deepEqual(mixed.small, ["tiny1", "tiny2"], "under a quarter of a slice: read by one extra stream");
  assert.equal(mixed.slices.reduce((n, x) => n + x.length, 0), 1000, "every byte of the big file once");
  assert.ok(mixed.slices.every((x) => x.path === "big"));
});
