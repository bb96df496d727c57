import type { ResvgRenderOptions } from "@resvg/resvg-js";
import { StasisError } from "../errors.js";
import { FONT_FAMILY, fontFiles } from "./drawing.js";

/** How the pictures are rendered: `zoom` times their size, with the bundled fonts only (no system font, so that
 *  every machine draws the same pixels). */
export function renderOptions(zoom: number): ResvgRenderOptions {
  return {
    fitTo: { mode: "zoom", value: zoom },
    font: {
      loadSystemFonts: false,
      fontFiles: fontFiles(),
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
    logLevel: "off",
  };
}

/** The renderer, loaded when first needed: only drawing needs its native module. */
export async function loadResvg(): Promise<typeof import("@resvg/resvg-js").Resvg> {
  try {
    return (await import("@resvg/resvg-js")).Resvg;
  } catch (e) {
    throw new StasisError("E_TOOL_MISSING", "the PNG renderer @resvg/resvg-js could not be loaded", {
      hint: "run `npm ci` in stasis's folder: it installs the renderer's prebuilt binary for Linux x86-64 (glibc)",
      cause: e,
    });
  }
}

/**
 * An SVG rendered to a PNG by resvg, `zoom` times its size (2: sharp on a high-density screen, and still small:
 * the pictures are flat colours).
 *
 * @example
 *   await writeFile("waterfall.png", await toPng(toSvg(waterfall(report))));
 */
export async function toPng(svg: string, zoom = 2): Promise<Buffer> {
  const Resvg = await loadResvg();
  return new Resvg(svg, renderOptions(zoom)).render().asPng();
}
