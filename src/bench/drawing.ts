/** A picture as a list of rectangles, lines and text, written out as SVG (svg.ts) and rendered to PNG (png.ts). */
export interface Drawing {
  width: number;
  height: number;
  background: string;
  items: Item[];
}

export type Item =
  | { kind: "rect"; x: number; y: number; w: number; h: number; color: string }
  | { kind: "line"; x1: number; y1: number; x2: number; y2: number; color: string }
  | {
      kind: "text";
      x: number;
      /** The text's baseline (descenders hang below it). */
      y: number;
      text: string;
      color: string;
      size: number;
      /** Which end of the text `x` is (SVG's text-anchor); start by default. */
      anchor?: "start" | "middle" | "end";
      bold?: boolean;
    };

/** The one font the pictures use; png.ts renders with its files from the dejavu-fonts-ttf package. */
export const FONT_FAMILY = "DejaVu Sans";

/**
 * About how wide `text` is in DejaVu Sans at `size` px, for laying out labels (the renderer measures the real
 * glyphs; this errs a little wide so that what is placed by it fits). Advances in em, from the font's metrics:
 * digits 0.636, most lower case about 0.6, capitals about 0.7.
 */
export function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    if (ch === " ") em += 0.32;
    else if ("il.,:;'|!()[]/".includes(ch)) em += 0.36;
    else if ("mwMW".includes(ch)) em += 0.98;
    else if (ch >= "0" && ch <= "9") em += 0.64;
    else if (ch >= "A" && ch <= "Z") em += 0.72;
    else em += 0.62;
  }
  return em * size * (bold ? 1.1 : 1);
}

/** Splits `text` at spaces into lines no wider than `width` px (a word longer than that gets a line of its own). */
export function wrapText(text: string, size: number, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** `text` cut to fit `width` px, with an ellipsis where it was cut. */
export function fitText(text: string, size: number, width: number): string {
  if (textWidth(text, size) <= width) return text;
  let s = text;
  while (s.length > 1 && textWidth(s + "…", size) > width) s = s.slice(0, -1);
  return s + "…";
}
