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
