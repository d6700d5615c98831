/**
 * HTML pages for figures that open offline (no CDN). Pages written into a folder load one shared
 * copy of plotly's minified library (`plotly.min.js`, 4.6 MB) written beside them once, so a run
 * folder holds one copy however many pages it has; {@link figuresHtml} without `plotlySrc` inlines
 * it for a page that must stand alone. Several figures can share one page.
 *
 * @module
 */

import { createRequire } from "node:module";
import type { Figure } from "./figures.ts";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";

/** The file name of the shared plotly copy beside the pages. */
export const PLOTLY_FILE = "plotly.min.js";

let plotlySource: string | null = null;
let plotlyBytes: number | null = null;

/** The plotly.js library source (read once from the installed npm package). */
export function plotlyJs(): string {
  if (plotlySource === null) {
    const require = createRequire(import.meta.url);
    plotlySource = Deno.readTextFileSync(require.resolve("plotly.js-dist-min/plotly.min.js"));
  }
  return plotlySource;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Figure JSON safe to embed inside a <script> element. */
export function figureJson(fig: Figure): string {
  return JSON.stringify(fig).replace(/</g, "\\u003c");
}

/**
 * A complete HTML page showing `figures`, one below the other; plotly inlined, or loaded from
 * `plotlySrc` (a path relative to the page).
 */
export function figuresHtml(
  figures: Figure[],
  title: string,
  o: { plotlySrc?: string } = {},
): string {
  const divs = figures.map((f, i) =>
    `<div id="fig${i}" style="width:100%;min-height:420px"></div>\n<script>(function(){var f=` +
    `${
      figureJson(f)
    };Plotly.newPlot("fig${i}", f.data, f.layout, {responsive: true});})();</script>`
  ).join("\n");
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
${
    o.plotlySrc
      ? `<script src="${escapeHtml(o.plotlySrc)}"></script>`
      : `<script>${plotlyJs()}</script>`
  }</head>
<body style="font-family:sans-serif;margin:1em">
${divs}
</body></html>
`;
}

/**
 * Writes `figures` to `path` as one HTML page, atomically, loading the plotly copy beside it
 * (written first if the folder has none).
 */
export async function writeFiguresHtml(
  path: string,
  figures: Figure | Figure[],
  title?: string,
): Promise<void> {
  const list = Array.isArray(figures) ? figures : [figures];
  const t = title ?? String(list[0]?.layout?.title?.text ?? "figure");
  const lib = join(dirname(path), PLOTLY_FILE);
  const size = await Deno.stat(lib).then((s) => s.size, () => -1);
  plotlyBytes ??= new TextEncoder().encode(plotlyJs()).length;
  if (size !== plotlyBytes) await writeFileAtomic(lib, plotlyJs());
  await writeFileAtomic(path, figuresHtml(list, t, { plotlySrc: PLOTLY_FILE }));
}
