/**
 * Self-contained HTML for figures: plotly's minified library is inlined, so the files open
 * offline (no CDN). Several figures can share one file.
 *
 * @module
 */

import pkg from "plotly.js-dist-min/package.json" with { type: "json" };
import { createRequire } from "node:module";
import type { Figure } from "./figures.ts";
import { writeFileAtomic } from "../util/atomic.ts";

let plotlySource: string | null = null;

/** The plotly.js library source (read once from the installed npm package). */
export function plotlyJs(): string {
  if (plotlySource === null) {
    const require = createRequire(import.meta.url);
    plotlySource = Deno.readTextFileSync(require.resolve("plotly.js-dist-min/plotly.min.js"));
  }
  return plotlySource;
}

/** Version of the bundled plotly.js. */
export const PLOTLY_VERSION: string = pkg.version;

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Figure JSON safe to embed inside a <script> element. */
export function figureJson(fig: Figure): string {
  return JSON.stringify(fig).replace(/</g, "\\u003c");
}

/** A complete HTML page showing `figures`, one below the other. */
export function figuresHtml(figures: Figure[], title: string): string {
  const divs = figures.map((f, i) =>
    `<div id="fig${i}" style="width:100%;min-height:420px"></div>\n<script>(function(){var f=` +
    `${
      figureJson(f)
    };Plotly.newPlot("fig${i}", f.data, f.layout, {responsive: true});})();</script>`
  ).join("\n");
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<script>${plotlyJs()}</script></head>
<body style="font-family:sans-serif;margin:1em">
${divs}
</body></html>
`;
}

/** Writes `figures` to `path` as one self-contained HTML page, atomically. */
export async function writeFiguresHtml(
  path: string,
  figures: Figure | Figure[],
  title?: string,
): Promise<void> {
  const list = Array.isArray(figures) ? figures : [figures];
  const t = title ?? String(list[0]?.layout?.title?.text ?? "figure");
  await writeFileAtomic(path, figuresHtml(list, t));
}
