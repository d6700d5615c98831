/**
 * Reports of a last-layer run: decision-region and metric figures (plotly) and the summary
 * table.
 *
 * @module
 */

import { decisionRegionFigure, type Figure, lineFigure, tableFigure } from "../plot/figures.ts";
import type { ArmSnapshot, MetricRow } from "./experiment.ts";
import { boundingBox, regionGrid } from "./geometry.ts";

/** Decision regions of the network's last layer and of the SVM, in φ-space, side by side. */
export function regionFigures(title: string, s: ArmSnapshot): Figure[] {
  const box = boundingBox(s.phi, 0.15);
  const cap = Math.min(s.labels.length, 3000);
  const step = s.labels.length / cap;
  const idx = Array.from({ length: cap }, (_, k) => Math.floor(k * step));
  const points = {
    x: idx.map((i) => s.phi[2 * i]),
    y: idx.map((i) => s.phi[2 * i + 1]),
    label: idx.map((i) => s.labels[i]),
  };
  return [["network's last layer", s.nn], ["SVM", s.svm]].map(([name, m]) => {
    const g = regionGrid(m as ArmSnapshot["nn"], box);
    return decisionRegionFigure({ title: `${title} — ${name}`, ...g, points });
  });
}

/** Angle and offsets along training. */
export function metricFigures(title: string, rows: MetricRow[]): Figure[] {
  const series = (phase: MetricRow["phase"], key: keyof MetricRow, name: string) => {
    const r = rows.filter((x) => x.phase === phase);
    return { name, x: r.map((x) => x.step), y: r.map((x) => x[key] as number) };
  };
  // against log(step): the theory has the direction converge like 1/log t
  return (["train", "reinit"] as const).map((phase) =>
    lineFigure([
      series(phase, "angle_deg", "angle NN vs SVM (°)"),
      { ...series(phase, "offset_nn_svm", "offset NN − SVM (SVM margins)"), dash: "dot" },
      { ...series(phase, "agreement", "grid agreement"), dash: "dashdot" },
    ], {
      title: `${title} — ${phase === "train" ? "whole network trained" : "re-init arm (φ frozen)"}`,
      xTitle: "step (log scale)",
      yTitle: "value",
      logX: true,
    })
  );
}

/** One summary row per experiment and arm. */
export interface SummaryRow {
  experiment: string;
  arm: string;
  steps: number;
  /** cross-entropy on the whole training set at the last evaluation */
  train_ce: number;
  test_acc: number | null;
  angle_deg: number;
  /** signed, in SVM margins (multi-class: mean over pairs) */
  offset_nn_svm: number;
  offset_max_abs: number;
  /** φ separable at the end: the reference is the hard-margin SVM */
  separable: boolean;
  agreement: number;
  seconds: number;
}

/** The summary table as Markdown. */
export function summaryMarkdown(rows: SummaryRow[]): string {
  const f = (v: number | null, d = 4) => (v === null || Number.isNaN(v) ? "—" : v.toFixed(d));
  return [
    "| experiment | arm | steps | final train CE | test acc | angle (°) | offset NN − SVM (margins) | max \\|offset\\| | φ separable | agreement | s |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ...rows.map((r) =>
      `| ${r.experiment} | ${r.arm} | ${r.steps} | ${r.train_ce.toExponential(2)} | ${
        f(r.test_acc)
      } | ${f(r.angle_deg, 2)} | ` +
      `${f(r.offset_nn_svm, 3)} | ${f(r.offset_max_abs, 3)} | ${r.separable ? "yes" : "no"} | ${
        f(r.agreement)
      } | ${r.seconds.toFixed(0)} |`
    ),
  ].join("\n") + "\n";
}

/** The summary rows as a table figure. */
export function summaryTableFigure(summary: SummaryRow[]): Figure {
  return tableFigure(
    [
      "experiment",
      "arm",
      "steps",
      "final train CE",
      "test acc",
      "angle °",
      "offset (margins)",
      "max |offset|",
      "agreement",
    ],
    summary.map((r) => [
      r.experiment,
      r.arm,
      r.steps,
      r.train_ce,
      r.test_acc ?? NaN,
      r.angle_deg,
      r.offset_nn_svm,
      r.offset_max_abs,
      r.agreement,
    ]),
    "last layer vs SVM",
  );
}
