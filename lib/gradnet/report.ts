/**
 * GradNet's outputs: the Table-1-like comparison (base accuracy, GradNet accuracy, gain per rung)
 * as JSON, Markdown and an HTML plot, and learning-curve plots.
 *
 * @module
 */

import { barFigure, type Figure, lineFigure, type Series, tableFigure } from "../plot/figures.ts";
import { writeFiguresHtml } from "../plot/html.ts";
import { lineChartSvg } from "../plot/svg.ts";
import type { RunDir } from "../run/run_dir.ts";

/** One rung of the table. */
export interface RungResult {
  rung: number;
  target: number;
  /** the base snapshot's validation accuracy (what chose it) */
  base_val_acc: number;
  /** the base snapshot's test accuracy */
  base_acc: number;
  gradnet_acc: number;
  /** relative gain, improved / original − 1, as in the poster */
  gain: number;
  test_rule: string;
  test_images: number;
  /** GradNet epochs */
  epochs: number;
  /** "cached" or "on the fly" */
  features: string;
  /** GradNet training steps per second */
  steps_per_s: number;
  seconds: number;
  base_step: number;
}

/** The table as Markdown. */
export function tableMarkdown(rows: RungResult[], title: string): string {
  const lines = [
    `### ${title}`,
    "",
    "| rung | target (validation) | base val | base test | GradNet test | gain (relative) | test rule | test images | epochs | steps/s | seconds |",
    "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.rung} | ${r.target} | ${r.base_val_acc.toFixed(4)} | ${r.base_acc.toFixed(4)} | ` +
      `${r.gradnet_acc.toFixed(4)} | ${(100 * r.gain).toFixed(2)} % | ${r.test_rule} | ` +
      `${r.test_images} | ${r.epochs} | ${r.steps_per_s.toFixed(0)} | ${r.seconds.toFixed(0)} |`
    ),
  ];
  return lines.join("\n") + "\n";
}

/** The table's figures: grouped bars (base vs GradNet per rung) and the table itself. */
export function tableFigures(rows: RungResult[], title: string): Figure[] {
  const cats = rows.map((r) => `rung ${r.rung} (≥${r.target})`);
  return [
    barFigure(cats, [
      { name: "base network", values: rows.map((r) => r.base_acc) },
      { name: "GradNet", values: rows.map((r) => r.gradnet_acc) },
    ], { title, yTitle: "test accuracy" }),
    tableFigure(
      ["rung", "target", "base", "GradNet", "gain %", "rule", "seconds"],
      rows.map((
        r,
      ) => [
        r.rung,
        r.target,
        r.base_acc,
        r.gradnet_acc,
        100 * r.gain,
        r.test_rule,
        Math.round(r.seconds),
      ]),
      title,
    ),
  ];
}

/** Writes table.json, table.md and table.html; returns the Markdown. */
export async function writeTable(run: RunDir, rows: RungResult[], title: string): Promise<string> {
  const md = tableMarkdown(rows, title);
  await run.writeJson("table.json", rows);
  await run.writeText("table.md", md);
  await writeFiguresHtml(run.file("table.html"), tableFigures(rows, title), title);
  return md;
}

/**
 * One GradNet run's curves: validation accuracy (sum rule), training accuracy (one random-label
 * row per visit, dashed) and the base snapshot's validation accuracy (dotted; NaN: none).
 */
export function curveSeries(
  name: string,
  res: { curve: { step: number; val_acc: number; train_acc: number }[] },
  baseVal: number,
): Series[] {
  const x = res.curve.map((c) => c.step);
  return [
    { name: `${name} validation`, x, y: res.curve.map((c) => c.val_acc) },
    { name: `${name} train`, x, y: res.curve.map((c) => c.train_acc), dash: "dash" },
    { name: `${name} base`, x: [x[0], x[x.length - 1]], y: [baseVal, baseVal], dash: "dot" },
  ];
}

/** A learning-curve figure. */
export function curvesFigure(
  series: Series[],
  o: { title: string; xTitle: string; yTitle: string },
): Figure {
  return lineFigure(series, o);
}

/**
 * Writes learning curves to `name`.html (interactive) and `name`.svg (static, for READMEs);
 * groups of `colorGroup` consecutive series (one GradNet run) share a colour in the SVG.
 */
export async function writeCurves(
  run: RunDir,
  name: string,
  series: Series[],
  o: { title: string; xTitle: string; yTitle: string; colorGroup?: number },
): Promise<void> {
  await writeFiguresHtml(run.file(`${name}.html`), curvesFigure(series, o), o.title);
  await run.writeText(`${name}.svg`, lineChartSvg(series, o));
}
