import type { Drawing } from "./drawing.js";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A Drawing as an SVG document. Text `y` is the top of its line. */
export function toSvg(d: Drawing): string {
  const body = d.items.map((it) =>
    it.kind === "rect"
      ? `<rect x="${it.x.toFixed(1)}" y="${it.y.toFixed(1)}" width="${it.w.toFixed(1)}" height="${it.h.toFixed(1)}" fill="${it.color}"/>`
      : `<text x="${it.x.toFixed(1)}" y="${(it.y + it.size * 0.85).toFixed(1)}" font-size="${it.size * 0.9}" fill="${it.color}">${esc(it.text)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${d.width}" height="${d.height}" viewBox="0 0 ${d.width} ${d.height}" font-family="monospace">`,
    `<rect width="100%" height="100%" fill="${d.background}"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
