/**
 * Inline display of figures in a Jupyter notebook on the Deno kernel: `show(fig)` returns an
 * object the kernel renders as HTML. The first figure of a kernel session carries plotly.js
 * itself (no CDN); later ones reuse it.
 *
 * @module
 */

import type { Figure } from "./figures.ts";
import { figureJson, plotlyJs } from "./html.ts";

let libraryShipped = false;
let counter = 0;

/** A value that the Deno Jupyter kernel displays as the figure. */
export function show(fig: Figure): { [key: symbol]: () => Record<string, string> } {
  const id = `gradlab-fig-${Date.now()}-${counter++}`;
  const lib = libraryShipped ? "" : `<script>${plotlyJs()}</script>`;
  libraryShipped = true;
  const html = `${lib}<div id="${id}" style="width:100%;min-height:420px"></div>` +
    `<script>(function(){var f=${
      figureJson(fig)
    };Plotly.newPlot("${id}",f.data,f.layout,{responsive:true});})();</script>`;
  return {
    [Symbol.for("Jupyter.display")]: () => ({
      "text/html": html,
      "text/plain": `[figure: ${fig.layout?.title?.text ?? "untitled"}]`,
    }),
  };
}

/** A Markdown block for notebook output (tables, notes). */
export function markdown(text: string): { [key: symbol]: () => Record<string, string> } {
  return { [Symbol.for("Jupyter.display")]: () => ({ "text/markdown": text, "text/plain": text }) };
}

/** An SVG document as notebook output (shown as an image, also on a repository page). */
export function svg(text: string): { [key: symbol]: () => Record<string, string> } {
  return {
    [Symbol.for("Jupyter.display")]: () => ({
      "image/svg+xml": text,
      "text/plain": "[SVG figure]",
    }),
  };
}
