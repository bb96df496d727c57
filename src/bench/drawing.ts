import { createRequire } from "node:module";
import { StasisError } from "../errors.js";
import { advanceWidths } from "./_font-metrics.js";

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

const require = createRequire(import.meta.url);

/** DejaVu Sans, regular and bold, from the dejavu-fonts-ttf package: the fonts the pictures are drawn with. */
export function fontFiles(): [regular: string, bold: string] {
  const [regular, bold] = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"].map((f) => {
    try {
      return require.resolve(`dejavu-fonts-ttf/ttf/${f}`);
    } catch (e) {
      throw new StasisError("E_TOOL_MISSING", `the font file ${f} (npm package dejavu-fonts-ttf) is missing`, {
        hint: "run `npm ci` in stasis's folder to install its dependencies",
        cause: e,
      });
    }
  });
  return [regular!, bold!];
}

let widths: [(c: number) => number, (c: number) => number] | null | undefined;

/**
 * How wide `text` is in DejaVu Sans at `size` px, from the font's own advance widths (for laying out labels).
 * Without the font file, an estimate that errs wide (digits 0.64 em, most lower case 0.62, capitals 0.72), so
 * that the SVG is still drawn and what is placed by it still fits.
 */
export function textWidth(text: string, size: number, bold = false): number {
  if (widths === undefined) {
    try {
      widths = fontFiles().map((f) => advanceWidths(f)) as [(c: number) => number, (c: number) => number];
    } catch {
      widths = null;
    }
  }
  let em = 0;
  for (const ch of text) em += widths ? widths[bold ? 1 : 0](ch.codePointAt(0)!) : estimate(ch) * (bold ? 1.1 : 1);
  return em * size;
}

function estimate(ch: string): number {
  if (ch === " ") return 0.32;
  if ("il.,:;'|!()[]/".includes(ch)) return 0.36;
  if ("mwMW".includes(ch)) return 0.98;
  if (ch >= "0" && ch <= "9") return 0.64;
  if (ch >= "A" && ch <= "Z") return 0.72;
  return 0.62;
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
