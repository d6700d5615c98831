/**
 * The authors' five comparisons (spec §2 and the notebook's history): one GradNet per variant on
 * the same base snapshot, each scored once on the test set, their validation curves side by side.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";
import type { RunDir } from "../run/run_dir.ts";
import { NORMALIZATIONS } from "../gradients/normalize.ts";
import type { Series } from "../plot/figures.ts";
import { loadSnapshot } from "./base.ts";
import {
  type ExperimentData,
  type ExperimentOptions,
  gradNetOnSnapshot,
  type Setting,
} from "./experiment.ts";
import { curveSeries, writeCurves } from "./report.ts";

/** The comparisons. */
export const STUDY_NAMES = [
  "optimizer",
  "regularization",
  "selection",
  "structure",
  "normalization",
] as const;
export type Study = typeof STUDY_NAMES[number];

/** The settings a study compares, as variants of `base`. */
export function studySettings(base: Setting, study: Study): Setting[] {
  const v = (name: string, p: Partial<Setting>): Setting => ({ ...base, ...p, name });
  switch (study) {
    case "optimizer":
      return [
        v("sgd", { optimizer: { kind: "sgd" }, lr: 0.01 }),
        v("adam", { optimizer: { kind: "adam" }, lr: 1e-3 }),
      ];
    case "regularization":
      return [
        v("none", { dropout: 0, batchNorm: false }),
        v("dropout", { dropout: 0.5 }),
        v("batchnorm", { batchNorm: true }),
      ];
    case "selection":
      return [5, 15, 30].map((q) => v(`top${q}`, { sparsify: true, selectionPercent: q })).concat(
        v("all", { sparsify: false }),
      );
    case "structure":
      return ["5+25+10", "5+100+25", "5+22+11+3"].map((st) =>
        v(st.replaceAll("+", "-"), { structure: st })
      );
    case "normalization":
      return NORMALIZATIONS.map((n) => v(n, { normalization: n }));
  }
}

/**
 * Runs every variant of a study on base snapshot `rung` (resumable: each variant's result is a
 * JSON file of the run folder) and writes `study-<name>.html/.svg`.
 */
export async function runStudy(
  run: RunDir,
  baseNet: tf.LayersModel,
  data: ExperimentData,
  xo: ExperimentOptions,
  o: { study: Study; base: Setting; rung: number; baseAcc: number; title: string },
): Promise<{
  summary: {
    study: string;
    rung: number;
    base_acc: number;
    final_test_acc: Record<string, number>;
  };
  curves: Series[];
  study: { name: string; baseAcc: number; results: Record<string, number>; curves: Series[] };
}> {
  const curves: Series[] = [];
  const results: Record<string, number> = {};
  for (const s of studySettings(o.base, o.study)) {
    const res = await run.cachedJson(`study-${o.study}-${s.name}.json`, async () => {
      await loadSnapshot(run, o.rung, baseNet);
      return await gradNetOnSnapshot(run, baseNet, data, s, xo, `rung${o.rung}`);
    });
    results[s.name] = res.acc;
    curves.push(...curveSeries(`${s.name} (test ${res.acc.toFixed(4)})`, res, NaN));
  }
  await writeCurves(run, `study-${o.study}`, curves, {
    title: `${o.title}, base test accuracy ${o.baseAcc.toFixed(4)}`,
    xTitle: "GradNet iterations",
    yTitle: "validation accuracy (sum rule)",
    colorGroup: 3,
  });
  return {
    summary: { study: o.study, rung: o.rung + 1, base_acc: o.baseAcc, final_test_acc: results },
    curves,
    study: { name: o.study, baseAcc: o.baseAcc, results, curves },
  };
}
