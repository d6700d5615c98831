/**
 * The GUNN experiment's summary: arms over seeds, paired differences, learning curves.
 *
 * @module
 */

import { type Figure, lineFigure } from "../plot/figures.ts";
import type { UpdateMode } from "../layers/gunn.ts";
import type { ArmResult } from "./train.ts";
import { interval95, meanSd } from "../util/stats.ts";

/** One arm's summary over seeds. */
export interface ArmSummary {
  arm: string;
  mode: UpdateMode;
  params: number;
  testAcc: number[];
  mean: number;
  sd: number;
  imagesPerSecond: number;
  trainSeconds: number;
}

/**
 * Both arms over the seeds (`results` keyed "<arm>-seed<seed>", arms named as in `modes`) and the
 * per-seed GUNN − SUNN test-accuracy differences.
 */
export function summarizeArms(
  results: Map<string, ArmResult>,
  modes: Record<string, UpdateMode>,
  seeds: number[],
  params: number,
): { arms: ArmSummary[]; differences: number[] } {
  const arms = Object.entries(modes).map(([arm, mode]) => {
    const rs = seeds.map((s) => results.get(`${arm}-seed${s}`)!);
    const acc = rs.map((r) => r.testAcc);
    const seconds = rs.reduce((s, r) => s + r.trainSeconds, 0);
    const images = rs.reduce((s, r) => s + r.imagesPerSecond * r.trainSeconds, 0);
    return {
      arm,
      mode,
      params,
      testAcc: acc,
      ...meanSd(acc),
      imagesPerSecond: images / seconds,
      trainSeconds: seconds,
    };
  });
  const differences = seeds.map((s) =>
    results.get(`GUNN-seed${s}`)!.testAcc - results.get(`SUNN-seed${s}`)!.testAcc
  );
  return { arms, differences };
}

/** The summary: both arms over the seeds and the paired GUNN − SUNN differences. */
export function summaryMarkdown(
  title: string,
  arms: ArmSummary[],
  diffs: number[],
  seeds: number[],
): string {
  const pct = (v: number) => (100 * v).toFixed(2);
  const d = meanSd(diffs), ci = interval95(diffs);
  return [
    `### ${title}`,
    "",
    "| arm | parameters | test accuracy (mean ± sd) | per seed | images/s | training s |",
    "|---|---:|---:|---|---:|---:|",
    ...arms.map((a) =>
      `| ${a.arm} | ${a.params.toLocaleString("en-US")} | ${pct(a.mean)} % ± ${
        Number.isNaN(a.sd) ? "—" : pct(a.sd)
      } | ${a.testAcc.map(pct).join(", ")} | ${a.imagesPerSecond.toFixed(1)} | ${
        a.trainSeconds.toFixed(0)
      } |`
    ),
    "",
    `GUNN − SUNN per seed (${seeds.join(", ")}): ${diffs.map((v) => pct(v)).join(", ")} points; ` +
    `mean ${pct(d.mean)} ± ${Number.isNaN(d.sd) ? "—" : pct(d.sd)} points (sd)` +
    (diffs.length > 1
      ? `, 95 % interval of the paired difference [${pct(ci.low)}, ${pct(ci.high)}] points.`
      : "."),
    "",
  ].join("\n");
}

/** Test accuracy and training loss per epoch of every arm and seed (SUNN dashed). */
export function curveFigures(results: Map<string, ArmResult>, title: string): Figure[] {
  const series = (metric: string) =>
    [...results.entries()].map(([key, r]) => ({
      name: key,
      x: r.history.map((h) => h.epoch),
      y: r.history.map((h) => Number(h[metric])),
      dash: key.startsWith("SUNN") ? "dash" as const : undefined,
    }));
  return [
    lineFigure(series("test_acc"), {
      title: `${title}: test accuracy`,
      xTitle: "epoch",
      yTitle: "test accuracy",
    }),
    lineFigure(series("train_loss"), {
      title: `${title}: training loss`,
      xTitle: "epoch",
      yTitle: "cross-entropy",
      logY: true,
    }),
  ];
}
