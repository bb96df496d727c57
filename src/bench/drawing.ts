/** A picture as a list of rectangles and text lines, drawn by both the SVG writer and the PNG rasteriser. */
export interface Drawing {
  width: number;
  height: number;
  background: string;
  items: Item[];
}

export type Item =
  | { kind: "rect"; x: number; y: number; w: number; h: number; color: string }
  | { kind: "text"; x: number; y: number; text: string; color: string; /** height in px of the text's line */ size: 12 | 16 };

/** "#rrggbb" -> [r, g, b]. */
export function rgb(color: string): [number, number, number] {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
