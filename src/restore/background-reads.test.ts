import { test } from "node:test";
import assert from "node:assert/strict";
import { readOrder } from "./background-reads.js";
import type { FileEntry } from "../store/manifest.js";

const f = (path: string, role: FileEntry["role"]): FileEntry => ({ path, role, size: 1, sha256: "0".repeat(64), chunkSize: 1, chunks: [] });

test("files are read in the order the restore needs them: metadata, memory pages, weights, the rest", () => {
  const order = readOrder([f("weights/rank0.stasisw", "weights"), f("images/pages-1.img", "image"), f("logs/x", "log"), f("images/core-1.img", "image"), f("link-remap/0-link_remap.1", "link-remap")]);
  assert.deepEqual(order.map((x) => x.path), ["images/core-1.img", "link-remap/0-link_remap.1", "images/pages-1.img", "weights/rank0.stasisw", "logs/x"]);
});
