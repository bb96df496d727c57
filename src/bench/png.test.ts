import { test } from "node:test";
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { toPng, crc32 } from "./png.js";
import { toSvg } from "./svg.js";
import type { Drawing } from "./drawing.js";

const drawing: Drawing = {
  width: 40,
  height: 20,
  background: "#ffffff",
  items: [
    { kind: "rect", x: 2, y: 2, w: 10, h: 5, color: "#ff0000" },
    { kind: "text", x: 20, y: 4, text: "Hi", size: 12, color: "#000000" },
  ],
};

test("the PNG is well formed and holds the rectangle and the text's pixels", () => {
  const png = toPng(drawing);
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  assert.equal(png.readUInt32BE(16), 40);
  assert.equal(png.readUInt32BE(20), 20);
  assert.equal(crc32(Buffer.from("IEND")), 0xae426082);
  const idatLen = png.readUInt32BE(33);
  const raw = inflateSync(png.subarray(41, 41 + idatLen));
  const pixel = (x: number, y: number) => [...raw.subarray(y * 121 + 1 + x * 3, y * 121 + 1 + x * 3 + 3)];
  assert.deepEqual(pixel(5, 4), [255, 0, 0]);
  assert.deepEqual(pixel(30, 15), [255, 255, 255]);
  // 'H' has a full left column: the text's first column is dark from its top row down.
  assert.deepEqual(pixel(20, 7), [0, 0, 0]);
});

test("the SVG escapes text", () => {
  const svg = toSvg({ ...drawing, items: [{ kind: "text", x: 0, y: 0, text: "a<b&c", size: 12, color: "#000000" }] });
  assert.match(svg, /a&lt;b&amp;c/);
});

test("the waterfall draws restore-cold's disk reads under its phases, on the same time axis", async () => {
  const { waterfall } = await import("./waterfall.js");
  const phase = (name: string, startMs: number, endMs: number) => ({ name, startMs, endMs, ms: endMs - startMs, ok: true });
  const disk = [0, 100, 200, 300, 400, 500, 600, 700, 800].map((ms, k) => ({ ms, bytes: k <= 4 ? k * 100e6 : 400e6 + (k - 4) * 200e6, reads: k * 10, inFlight: 16 }));
  const run = { strategy: "restore-cold" as const, readyMs: 790, firstTokenMs: 800, phases: [phase("criu-restore", 0, 400), phase("first-token", 790, 800)], setup: "cold" };
  const report = {
    date: "2026-11-27T12:00:00Z", machine: { host: "h", cpus: 2, cpuModel: "cpu", kernel: "k" }, command: "c", snapshot: "s", repeat: 1, verify: "auto",
    strategies: [{ strategy: "restore-cold" as const, setup: "cold", runs: [{ ...run, disk }], medianReadyMs: 790, medianFirstTokenMs: 800, phases: run.phases, disk }],
  };
  const d = waterfall(report);
  const label = d.items.find((i) => i.kind === "text" && i.text === "disk read");
  assert.ok(label, "a disk strip");
  const bars = d.items.filter((i) => i.kind === "rect" && i.color === "#e15759") as { x: number; w: number; h: number }[];
  assert.equal(bars.length, 4, "200 ms windows over 800 ms");
  assert.ok(bars[2]!.h > bars[0]!.h * 1.9, "the faster second half is taller (2 GB/s against 1)");
  assert.ok(bars.every((b, i) => i === 0 || b.x > bars[i - 1]!.x), "left to right in time");
  assert.ok(d.items.some((i) => i.kind === "text" && /peak 2\.00 GB\/s/.test(i.text)));
  const without = waterfall({ ...report, strategies: [{ ...report.strategies[0]!, disk: undefined }] });
  assert.ok(!without.items.some((i) => i.kind === "text" && i.text === "disk read"), "no samples, no strip");
});
