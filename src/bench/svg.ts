import { FONT_FAMILY, type Drawing } from "./drawing.js";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const n = (x: number) => x.toFixed(1);

/** A Drawing as an SVG document, its text in DejaVu Sans (a viewer without it picks another sans-serif). */
export function toSvg(d: Drawing): string {
  const body = d.items.map((it) => {
    if (it.kind === "rect") {
      return `<rect x="${n(it.x)}" y="${n(it.y)}" width="${n(it.w)}" height="${n(it.h)}" fill="${it.color}"/>`;
    }
    if (it.kind === "line") {
      return `<line x1="${n(it.x1)}" y1="${n(it.y1)}" x2="${n(it.x2)}" y2="${n(it.y2)}" stroke="${it.color}"/>`;
    }
    const anchor = it.anchor && it.anchor !== "start" ? ` text-anchor="${it.anchor}"` : "";
    const weight = it.bold ? ` font-weight="bold"` : "";
    const style = `font-size="${it.size}" fill="${it.color}"${anchor}${weight}`;
    return `<text x="${n(it.x)}" y="${n(it.y)}" ${style}>${esc(it.text)}</text>`;
  });
  const size = `width="${d.width}" height="${d.height}" viewBox="0 0 ${d.width} ${d.height}"`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" ${size} font-family="${FONT_FAMILY}, sans-serif">`,
    `<rect width="100%" height="100%" fill="${d.background}"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
