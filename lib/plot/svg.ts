/**
 * Static SVG line charts: the figures a README or a repository page shows without running
 * anything (the HTML figures need a browser and plotly). Written here because no npm package
 * renders a chart to SVG without a browser or a canvas; this one draws axes, ticks, lines and a
 * legend and nothing more.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { lineChartSvg } from "./svg.ts";
 * const svg = lineChartSvg([{ name: "a", x: [0, 1, 2], y: [0.5, 0.7, 0.8] }], {
 *   title: "t", xTitle: "step", yTitle: "accuracy",
 * });
 * assert.match(svg, /^<svg /);
 * assert.match(svg, /<polyline /);
 * ```
 *
 * @module
 */

import type { Figure, Series } from "./figures.ts";

const COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** About `n` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1e4 && Math.abs(v) < 1e9 && Number.isInteger(v / 1000)) return `${v / 1000}k`;
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

// 10^t as a tick label: plain for 0.001 … 1000, "1e<t>" beyond
function decadeLabel(t: number): string {
  return Math.abs(t) <= 3 ? fmt(10 ** t) : `1e${t}`;
}

/**
 * A line chart as an SVG document. Series with a `dash` are drawn dashed; null or non-finite y
 * values break a line. Colours cycle per series, or per group of `colorGroup` consecutive
 * series (a validation curve, its dashed training twin and a dotted reference share a colour).
 */
export function lineChartSvg(
  series: Series[],
  o: {
    title: string;
    xTitle: string;
    yTitle: string;
    width?: number;
    height?: number;
    yRange?: [number, number];
    colorGroup?: number;
    /** logarithmic x axis (points with x ≤ 0 are left out) */
    logX?: boolean;
    /** logarithmic y axis (points with y ≤ 0 are left out; `yRange` in data units) */
    logY?: boolean;
  },
): string {
  const W = o.width ?? 760, H = o.height ?? 440;
  const cols = Math.max(2, o.colorGroup ?? 2);
  const legendRows = Math.ceil(series.length / cols);
  const m = { l: 64, r: 16, t: 36, b: 52 + 16 * legendRows };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const tx = (v: number) => (o.logX ? (v > 0 ? Math.log10(v) : NaN) : v);
  const xs = series.flatMap((s) => s.x).map(tx).filter(Number.isFinite);
  const ty = (v: number | null) => v === null ? NaN : o.logY ? (v > 0 ? Math.log10(v) : NaN) : v;
  const ys = series.flatMap((s) => s.y).map(ty).filter(Number.isFinite);
  const x0 = xs.length ? Math.min(...xs) : 0, x1 = xs.length ? Math.max(...xs) : 1;
  let [y0, y1] = o.yRange
    ? [ty(o.yRange[0]), ty(o.yRange[1])]
    : [ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = o.yRange ? 0 : 0.04 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  const X = (v: number) => m.l + (x1 > x0 ? ((v - x0) / (x1 - x0)) * pw : pw / 2);
  const Y = (v: number) => m.t + ph - ((v - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`,
  ];
  // decades, thinned to at most about 8 labels
  const decadeStep = Math.max(1, Math.ceil((Math.floor(y1) - Math.ceil(y0) + 1) / 8));
  const yTicks = o.logY
    ? Array.from(
      { length: Math.floor((Math.floor(y1) - Math.ceil(y0)) / decadeStep) + 1 },
      (_, k) => Math.ceil(y0) + k * decadeStep,
    )
    : ticks(y0, y1);
  for (const t of yTicks) {
    parts.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e5e5e5"/>`,
      `<text x="${m.l - 6}" y="${Y(t) + 4}" text-anchor="end">${
        o.logY ? decadeLabel(t) : fmt(t)
      }</text>`,
    );
  }
  const xTicks = o.logX
    ? Array.from(
      { length: Math.floor(x1) - Math.ceil(x0) + 1 },
      (_, k) => Math.ceil(x0) + k,
    )
    : ticks(x0, x1, 6);
  for (const t of xTicks) {
    parts.push(
      `<line x1="${X(t)}" x2="${X(t)}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#333"/>`,
      `<text x="${X(t)}" y="${m.t + ph + 17}" text-anchor="middle">${
        o.logX ? decadeLabel(t) : fmt(t)
      }</text>`,
    );
  }
  parts.push(
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle">${esc(o.xTitle)}</text>`,
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${
      esc(o.yTitle)
    }</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[Math.floor(i / (o.colorGroup ?? 1)) % COLORS.length];
    const dash = s.dash ? ` stroke-dasharray="${s.dash === "dot" ? "2 3" : "6 4"}"` : "";
    let run: string[] = [];
    const flush = () => {
      if (run.length) {
        parts.push(
          `<polyline points="${
            run.join(" ")
          }" fill="none" stroke="${color}" stroke-width="1.8"${dash}/>`,
        );
      }
      run = [];
    };
    s.x.forEach((xRaw, j) => {
      const y = ty(s.y[j]), x = tx(xRaw);
      if (!Number.isFinite(y) || !Number.isFinite(x)) flush();
      else run.push(`${X(x).toFixed(1)},${Y(Math.min(Math.max(y, y0), y1)).toFixed(1)}`);
    });
    flush();
    const lx = m.l + (i % cols) * (pw / cols), ly = m.t + ph + 48 + 16 * Math.floor(i / cols);
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${
        ly - 4
      }" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 30}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/**
 * A static SVG of a plotly line figure (its scatter traces, names, dashes, title and axis titles),
 * for a page that cannot run plotly. Other trace kinds are left out.
 */
export function lineFigureSvg(fig: Figure, o: { width?: number; height?: number } = {}): string {
  const traces = (fig.data as {
    type?: string;
    name?: string;
    x?: number[];
    y?: (number | null)[];
    line?: { dash?: string };
  }[]).filter((t) => (t.type ?? "scatter") === "scatter" && t.x && t.y);
  const layout = fig.layout as {
    title?: { text?: string };
    xaxis?: { title?: { text?: string }; type?: string };
    yaxis?: { title?: { text?: string }; type?: string };
  };
  return lineChartSvg(
    traces.map((t) => ({
      name: t.name ?? "",
      x: t.x!,
      y: t.y!,
      dash: t.line?.dash === "dot" ? "dot" as const : t.line?.dash ? "dash" as const : undefined,
    })),
    {
      title: layout.title?.text ?? "",
      xTitle: layout.xaxis?.title?.text ?? "",
      yTitle: layout.yaxis?.title?.text ?? "",
      logX: layout.xaxis?.type === "log",
      logY: layout.yaxis?.type === "log",
      ...o,
    },
  );
}
