/**
 * One experiment of a last-layer run, kept in the run folder: trained and compared once
 * (`experiment-<id>.json`, its metrics CSV and figure page), read back on a resumed run.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { RunDir } from "../run/run_dir.ts";
import { writeFiguresHtml } from "../plot/html.ts";
import { type ArmSnapshot, type MetricRow, runExperiment } from "./experiment.ts";
import { metricFigures, regionFigures, type SummaryRow } from "./report.ts";
import { setup, type SetupConfig } from "./setups.ts";

/** What an experiment leaves: its metric rows, summary rows and final snapshots. */
export interface StoredExperiment {
  title: string;
  rows: MetricRow[];
  summary: SummaryRow[];
  train: ArmSnapshot;
  reinit: ArmSnapshot;
}

/** The settings of a run that {@link storedExperiment} reads. */
export interface StudyConfig extends SetupConfig {
  evalPoints: number;
  reinitSteps: number;
  reinitLr: number;
  svmC: number;
  targetLoss: number;
}

/** The summary rows of an experiment: the last evaluation of each arm. */
export function summaryOf(id: string, rows: MetricRow[], seconds: number): SummaryRow[] {
  return ([["train", "whole network"], ["reinit", "re-init last layer"]] as const).map(
    ([phase, arm]) => {
      const r = rows.filter((x) => x.phase === phase).at(-1)!;
      return {
        experiment: id,
        arm,
        steps: r.step,
        train_ce: r.train_ce,
        test_acc: r.test_acc,
        angle_deg: r.angle_deg,
        offset_nn_svm: r.offset_nn_svm,
        offset_max_abs: r.offset_max_abs,
        separable: r.svm_separable === 1,
        agreement: r.agreement,
        seconds,
      };
    },
  );
}

/** Experiment `id` from the run folder, or trained and compared now (and stored). */
export async function storedExperiment(
  run: RunDir,
  id: string,
  cfg: StudyConfig,
  quiet = false,
): Promise<StoredExperiment> {
  const stored = await run.cachedJson(`experiment-${id}.json`, async () => {
    const t = performance.now();
    const su = await setup(id, cfg);
    console.error(`${su.title}: ${su.data.y.length} training points, ${su.steps} steps`);
    const res = await runExperiment(run, id, su.net, su.data, {
      steps: su.steps,
      evalEvery: Math.max(1, Math.floor(su.steps / cfg.evalPoints)),
      lr: su.lr,
      momentum: su.momentum,
      batch: su.batch,
      reinitSteps: cfg.reinitSteps,
      reinitEvalEvery: Math.max(1, Math.floor(cfg.reinitSteps / cfg.evalPoints)),
      reinitLr: cfg.reinitLr,
      svmC: cfg.svmC,
      targetLoss: cfg.targetLoss,
      clipNorm: su.clip,
      seed: cfg.seed,
    });
    tf.dispose([su.data.x, ...(su.data.xTest ? [su.data.xTest] : []), ...su.net.variables()]);
    const summary = summaryOf(id, res.rows, (performance.now() - t) / 1000);
    await run.writeMetrics(
      res.rows as unknown as Record<string, number | string | null>[],
      `${id}-metrics.csv`,
    );
    await writeFiguresHtml(run.file(`${id}.html`), [
      ...regionFigures(`${su.title}, trained`, res.train),
      ...regionFigures(`${su.title}, re-init arm`, res.reinit),
      ...metricFigures(su.title, res.rows),
    ], su.title);
    if (!quiet) {
      for (const r of summary) {
        console.error(
          `  ${r.arm}: ${r.steps} steps, train CE ${r.train_ce.toExponential(2)}, angle ${
            r.angle_deg.toFixed(2)
          }°, offset ${r.offset_nn_svm.toFixed(3)} margins, agreement ${r.agreement.toFixed(4)}`,
        );
      }
    }
    const plain = (s: ArmSnapshot) => ({
      ...s,
      phi: Array.from(s.phi),
      labels: Array.from(s.labels),
    });
    return {
      title: su.title,
      rows: res.rows,
      summary,
      train: plain(res.train),
      reinit: plain(res.reinit),
    };
  });
  const typed = (s: { phi: number[]; labels: number[] } & Omit<ArmSnapshot, "phi" | "labels">) => ({
    ...s,
    phi: Float32Array.from(s.phi),
    labels: Int32Array.from(s.labels),
  });
  return { ...stored, train: typed(stored.train), reinit: typed(stored.reinit) };
}
