import { readFileSync } from "node:fs";

/**
 * A TrueType font's advance widths, in em, by code point: read from its `cmap` (format 4, the Unicode BMP) and
 * `hmtx` tables. Enough to lay out labels in the font the renderer draws them with; kerning is left out (it only
 * brings letters closer).
 */
export function advanceWidths(file: string): (codePoint: number) => number {
  const f = readFileSync(file);
  const tables = new Map<string, number>();
  for (let i = 0, n = f.readUInt16BE(4); i < n; i++) {
    tables.set(f.toString("latin1", 12 + 16 * i, 16 + 16 * i), f.readUInt32BE(20 + 16 * i));
  }
  const table = (tag: string) => {
    const at = tables.get(tag);
    if (at === undefined) throw new Error(`${file}: no ${tag} table`);
    return at;
  };
  const unitsPerEm = f.readUInt16BE(table("head") + 18);
  const metrics = f.readUInt16BE(table("hhea") + 34);
  const hmtx = table("hmtx");
  const advance = (glyph: number) => f.readUInt16BE(hmtx + 4 * Math.min(glyph, metrics - 1)) / unitsPerEm;

  // The Unicode subtable of format 4: Windows Unicode BMP (3, 1) or Unicode BMP (0, 3).
  const cmap = table("cmap");
  let sub = -1;
  for (let i = 0, n = f.readUInt16BE(cmap + 2); i < n; i++) {
    const rec = cmap + 4 + 8 * i;
    const [platform, encoding] = [f.readUInt16BE(rec), f.readUInt16BE(rec + 2)];
    const at = cmap + f.readUInt32BE(rec + 4);
    const unicodeBmp = (platform === 3 && encoding === 1) || (platform === 0 && encoding === 3);
    if (unicodeBmp && f.readUInt16BE(at) === 4) sub = at;
  }
  if (sub < 0) throw new Error(`${file}: no Unicode BMP cmap of format 4`);
  const segs = f.readUInt16BE(sub + 6) / 2;
  const ends = sub + 14;
  const starts = ends + 2 * segs + 2;
  const deltas = starts + 2 * segs;
  const offsets = deltas + 2 * segs;
  const glyphOf = (c: number): number => {
    for (let s = 0; s < segs; s++) {
      if (f.readUInt16BE(ends + 2 * s) < c) continue;
      const start = f.readUInt16BE(starts + 2 * s);
      if (start > c) return 0;
      const delta = f.readUInt16BE(deltas + 2 * s);
      const offset = f.readUInt16BE(offsets + 2 * s);
      if (offset === 0) return (c + delta) & 0xffff;
      const g = f.readUInt16BE(offsets + 2 * s + offset + 2 * (c - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };
  const cache = new Map<number, number>();
  return (c) => {
    let w = cache.get(c);
    if (w === undefined) cache.set(c, (w = advance(glyphOf(c))));
    return w;
  };
}
