/**
 * Static figures of a last-layer run (SVG, shown on the repository page without running
 * anything): the angle between the network's last layer and the max-margin SVM, and the signed
 * offset of its boundary in SVM margins, against log(step) — the scale on which the theory has the
 * direction converge (like 1/log t).
 *
 * @module
 */

import { lineChartSvg } from "../plot/svg.ts";
import type { MetricRow } from "./experiment.ts";

/** One experiment's metric rows and its name. */
export interface ExperimentCurves {
  id: string;
  rows: MetricRow[];
}

/**
 * Two SVG charts over every experiment: the angle (°) and the offset (SVM margins) against the
 * training step on a log axis; the whole-network arm solid, the re-init arm dashed, one colour
 * per experiment.
 */
export function lastLayerCurvesSvg(experiments: ExperimentCurves[]): {
  angles: string;
  offsets: string;
} {
  const series = (key: "angle_deg" | "offset_nn_svm") =>
    experiments.flatMap((e) =>
      (["train", "reinit"] as const).map((phase) => {
        const r = e.rows.filter((x) => x.phase === phase && x.step > 0);
        return {
          name: `${e.id}${phase === "train" ? "" : " re-init"}`,
          x: r.map((x) => x.step),
          y: r.map((x) => x[key]),
          dash: phase === "train" ? undefined : ("dash" as const),
        };
      })
    );
  return {
    angles: lineChartSvg(series("angle_deg"), {
      title: "angle between the last layer and the max-margin SVM",
      xTitle: "training step (log scale)",
      yTitle: "angle (°)",
      logX: true,
      colorGroup: 2,
    }),
    offsets: lineChartSvg(series("offset_nn_svm"), {
      title: "offset of the last layer's boundary from the SVM's (0: on it, ±1: on a margin)",
      xTitle: "training step (log scale)",
      yTitle: "offset (SVM margins)",
      logX: true,
      colorGroup: 2,
      yRange: [-1.5, 1.5],
    }),
  };
}
