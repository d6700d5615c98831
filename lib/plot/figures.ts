/**
 * Figure builders: plain plotly `{data, layout}` objects for learning curves, grouped bars,
 * tables, image grids and 2-D decision regions. The same objects become self-contained HTML files
 * (`html.ts`) or inline notebook output (`notebook.ts`).
 *
 * @module
 */

/** A plotly figure. */
export interface Figure {
  /** plotly traces */
  // deno-lint-ignore no-explicit-any
  data: Record<string, any>[];
  /** plotly layout */
  // deno-lint-ignore no-explicit-any
  layout: Record<string, any>;
}

/** One curve of a line plot. */
export interface Series {
  /** legend name */
  name: string;
  /** x values */
  x: number[];
  /** y values (null: a gap) */
  y: (number | null)[];
  /** dash style, e.g. "dot" for the train curve next to the test one */
  dash?: string;
}

/** Multi-run learning curves (or any x/y series). */
export function lineFigure(
  series: Series[],
  o: { title: string; xTitle: string; yTitle: string; logY?: boolean; logX?: boolean },
): Figure {
  return {
    data: series.map((s) => ({
      type: "scatter",
      mode: s.x.length > 60 ? "lines" : "lines+markers",
      name: s.name,
      x: s.x,
      y: s.y,
      line: s.dash ? { dash: s.dash } : undefined,
    })),
    layout: {
      title: { text: o.title },
      xaxis: { title: { text: o.xTitle }, type: o.logX ? "log" : "linear" },
      yaxis: { title: { text: o.yTitle }, type: o.logY ? "log" : "linear" },
      legend: { orientation: "h", y: -0.2 },
    },
  };
}

/** Grouped bars: one group per category, one bar per series; optional error bars. */
export function barFigure(
  categories: string[],
  groups: { name: string; values: number[]; errors?: number[] }[],
  o: { title: string; yTitle: string },
): Figure {
  return {
    data: groups.map((g) => ({
      type: "bar",
      name: g.name,
      x: categories,
      y: g.values,
      error_y: g.errors ? { type: "data", array: g.errors, visible: true } : undefined,
    })),
    layout: { title: { text: o.title }, barmode: "group", yaxis: { title: { text: o.yTitle } } },
  };
}

/** A table. */
export function tableFigure(header: string[], rows: (string | number)[][], title: string): Figure {
  const fmt = (
    v: string | number,
  ) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v);
  return {
    data: [{
      type: "table",
      header: { values: header, align: "left", font: { size: 13 } },
      cells: { values: header.map((_, c) => rows.map((r) => fmt(r[c]))), align: "left" },
    }],
    layout: { title: { text: title } },
  };
}

/** A grid of images (uint8, HWC with 1 or 3 channels) with captions. */
export function imageGridFigure(
  images: {
    pixels: Uint8Array;
    height: number;
    width: number;
    channels: number;
    caption: string;
  }[],
  o: { title: string; columns: number },
): Figure {
  const cols = o.columns, rows = Math.ceil(images.length / cols);
  const data = images.map((im, i) => {
    const z = Array.from(
      { length: im.height },
      (_, y) =>
        Array.from({ length: im.width }, (_, x) => {
          const p = (y * im.width + x) * im.channels;
          return im.channels === 1
            ? [im.pixels[p], im.pixels[p], im.pixels[p]]
            : [im.pixels[p], im.pixels[p + 1], im.pixels[p + 2]];
        }),
    );
    const axis = i === 0 ? "" : String(i + 1);
    return {
      type: "image",
      z,
      xaxis: `x${axis}`,
      yaxis: `y${axis}`,
      name: im.caption,
      hoverinfo: "name",
    };
  });
  // deno-lint-ignore no-explicit-any
  const layout: Record<string, any> = {
    title: { text: o.title },
    grid: { rows, columns: cols, pattern: "independent" },
    annotations: images.map((im, i) => ({
      text: im.caption,
      showarrow: false,
      xref: `x${i === 0 ? "" : i + 1} domain`,
      yref: `y${i === 0 ? "" : i + 1} domain`,
      x: 0.5,
      y: 1.12,
      font: { size: 10 },
    })),
    height: 140 * rows + 80,
    margin: { t: 60, l: 10, r: 10, b: 10 },
  };
  for (let i = 0; i < images.length; i++) {
    const a = i === 0 ? "" : String(i + 1);
    layout[`xaxis${a}`] = { showticklabels: false };
    layout[`yaxis${a}`] = { showticklabels: false };
  }
  return { data, layout };
}

/**
 * Decision regions on a 2-D grid (class index per cell) with labelled points on top, and optional
 * lines (e.g. the SVM's boundary and margins).
 */
export function decisionRegionFigure(o: {
  title: string;
  xs: number[];
  ys: number[];
  /** z[j][i]: class at (xs[i], ys[j]) */
  z: number[][];
  points: { x: number[]; y: number[]; label: number[] };
  lines?: Series[];
  xTitle?: string;
  yTitle?: string;
}): Figure {
  const classes = [...new Set(o.points.label)].sort((a, b) => a - b);
  return {
    data: [
      {
        type: "heatmap",
        x: o.xs,
        y: o.ys,
        z: o.z,
        colorscale: "Portland",
        opacity: 0.35,
        showscale: false,
        hoverinfo: "skip",
      },
      ...classes.map((k) => {
        const idx = o.points.label.map((l, i) => (l === k ? i : -1)).filter((i) => i >= 0);
        return {
          type: "scattergl",
          mode: "markers",
          name: `class ${k}`,
          x: idx.map((i) => o.points.x[i]),
          y: idx.map((i) => o.points.y[i]),
          marker: { size: 4 },
        };
      }),
      ...(o.lines ?? []).map((s) => ({
        type: "scatter",
        mode: "lines",
        name: s.name,
        x: s.x,
        y: s.y,
        line: { dash: s.dash },
      })),
    ],
    layout: {
      title: { text: o.title },
      xaxis: { title: { text: o.xTitle ?? "φ₁" }, range: [o.xs[0], o.xs[o.xs.length - 1]] },
      yaxis: { title: { text: o.yTitle ?? "φ₂" }, range: [o.ys[0], o.ys[o.ys.length - 1]] },
    },
  };
}
