import { deflateSync } from "node:zlib";
import type { Drawing } from "./drawing.js";
import { rgb } from "./drawing.js";
import { glyph } from "./_font5x7.js";

/** A Drawing rasterised to a PNG (RGB, 8 bits per channel), text in the built-in 5x7 font. */
export function toPng(d: Drawing): Buffer {
  const W = Math.ceil(d.width);
  const H = Math.ceil(d.height);
  const px = Buffer.alloc(W * H * 3);
  const put = (x: number, y: number, c: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    const i = (y * W + x) * 3;
    px[i] = c[0];
    px[i + 1] = c[1];
    px[i + 2] = c[2];
  };
  const fill = (x: number, y: number, w: number, h: number, c: [number, number, number]) => {
    for (let yy = Math.round(y); yy < Math.round(y + h); yy++) for (let xx = Math.round(x); xx < Math.max(Math.round(x) + 1, Math.round(x + w)); xx++) put(xx, yy, c);
  };
  fill(0, 0, W, H, rgb(d.background));
  for (const it of d.items) {
    if (it.kind === "rect") {
      fill(it.x, it.y, it.w, it.h, rgb(it.color));
      continue;
    }
    // 12 px lines draw the font at 1x (6 px per character), 16 px lines at 2x.
    const scale = it.size === 16 ? 2 : 1;
    const c = rgb(it.color);
    let x = Math.round(it.x);
    const top = Math.round(it.y) + (it.size === 16 ? 1 : 3);
    for (const ch of it.text) {
      const cols = glyph(ch);
      cols.forEach((bits, cx) => {
        for (let cy = 0; cy < 7; cy++) if (bits & (1 << cy)) fill(x + cx * scale, top + cy * scale, scale, scale, c);
      });
      x += 6 * scale;
    }
  }
  // PNG: signature, IHDR, IDAT (each row prefixed with filter byte 0), IEND.
  const raw = Buffer.alloc(H * (W * 3 + 1));
  for (let y = 0; y < H; y++) px.copy(raw, y * (W * 3 + 1) + 1, y * W * 3, (y + 1) * W * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
