/**
 * SuperNet's summary: the arms over seeds, the generator's ceiling, the paper's claim.
 *
 * @module
 */

import { type Figure, lineFigure, tableFigure } from "../plot/figures.ts";
import { meanSd } from "../util/stats.ts";
import type { Arm, ArmOutcome, ZForm } from "./train.ts";
import type { Task } from "./tasks.ts";

/** One held-out task and arm over the seeds. */
export interface ArmRow {
  heldOut: string;
  task: string;
  arm: Arm;
  testAcc: number[];
  mean: number;
  /** sample standard deviation over seeds (NaN for one seed) */
  sd: number;
  /** learning rate chosen on validation, per seed (null: the arm does not train) */
  lr: (number | null)[];
  /** z form chosen on validation, per seed (null: not a z-only arm) */
  zForm: (ZForm | null)[];
  /** step of the kept weights, per seed */
  step: number[];
}

/** The summary: the arms table, the generator's ceiling and the claim against the numbers. */
export function reportMarkdown(
  title: string,
  rows: ArmRow[],
  seeds: number[],
  seconds: number,
  ceiling: number[],
): string {
  const pct = (v: number) => (100 * v).toFixed(1);
  const c = meanSd(ceiling);
  const lines = [
    `### ${title}`,
    "",
    "| held-out task | arm | test accuracy, mean ± sd | per seed | lr (validation) | z form | step kept |",
    "|---|---|---:|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.heldOut}: ${r.task} | ${r.arm} | ${pct(r.mean)} ± ${
        Number.isNaN(r.sd) ? "—" : pct(r.sd)
      } % | ${r.testAcc.map(pct).join(", ")} | ${r.lr.map((v) => v ?? "—").join(", ")} | ${
        r.zForm.map((v) => v ?? "—").join(", ")
      } | ${r.step.join(", ")} |`
    ),
    "",
    `The generator's own accuracy on its training tasks' test images (the ceiling of z-only): ` +
    `${pct(c.mean)} %${Number.isNaN(c.sd) ? "" : ` ± ${pct(c.sd)}`} over seeds.`,
    "",
    "The paper's claim: a new task is solved by optimising z alone, with the generator frozen.",
  ];
  for (const h of new Set(rows.map((r) => r.heldOut))) {
    const z = rows.find((r) => r.heldOut === h && r.arm === "z-only");
    const s = rows.find((r) => r.heldOut === h && r.arm === "scratch");
    if (z && s) {
      const d = 100 * (z.mean - s.mean);
      lines.push(
        `${h}: z-only ${d >= 0 ? "reaches" : "misses"} whole-network (scratch) training ` +
          `${d >= 0 ? "and exceeds it by" : "by"} ${Math.abs(d).toFixed(1)} points.`,
      );
    }
  }
  lines.push(
    "",
    `seeds ${seeds.join(", ")}; each arm that trains ran once per learning rate (z-only: per ` +
      `learning rate and z form) until its ` +
      `validation loss stopped falling; the test images scored the chosen weights once; ` +
      `wall time ${seconds.toFixed(0)} s`,
    "",
  );
  return lines.join("\n");
}

/**
 * The rows (one per held-out task and arm, over the seeds) and the figures: validation curves of
 * every learning rate tried (first seed), the generator's curve, the arms table.
 * `outcomes` is keyed `<task id>-<arm>-seed<seed>`.
 */
export function armReport(
  heldOut: { kind: string; task: Task }[],
  arms: Arm[],
  seeds: number[],
  outcomes: Map<string, ArmOutcome>,
  genCurves: { seed: number; step: number[]; acc: number[] }[],
): { rows: ArmRow[]; figures: Figure[] } {
  const rows: ArmRow[] = [];
  const figures: Figure[] = [];
  const lossFigures: Figure[] = [];
  for (const h of heldOut) {
    const series = [], lossSeries = [];
    for (const arm of arms) {
      const rs = seeds.map((s) => outcomes.get(`${h.task.id}-${arm}-seed${s}`))
        .filter((r): r is ArmOutcome => !!r);
      if (!rs.length) continue;
      const acc = rs.map((r) => r.testAcc);
      rows.push({
        heldOut: h.kind,
        task: h.task.name,
        arm,
        testAcc: acc,
        ...meanSd(acc),
        lr: rs.map((r) => r.lr),
        zForm: rs.map((r) => r.zForm),
        step: rs.map((r) => r.step),
      });
      // validation curves of every learning rate tried, first seed (the curves that prove the
      // runs flattened)
      for (const c of rs[0].valCurves) {
        const name = `${arm}${c.zForm ? ` (${c.zForm} z)` : ""}${
          c.lr === null ? "" : `, lr ${c.lr}`
        }`;
        const x = c.points.map((p) => p.step);
        lossSeries.push({ name, x, y: c.points.map((p) => p.val_loss) });
        series.push({ name, x, y: c.points.map((p) => p.val_acc) });
      }
    }
    lossFigures.push(lineFigure(lossSeries, {
      title: `${h.kind} (${h.task.name}): validation loss while adapting (seed ${seeds[0]})`,
      xTitle: "adaptation step",
      yTitle: "sigmoid cross-entropy",
      logY: true,
    }));
    figures.push(lineFigure(series, {
      title: `${h.kind} (${h.task.name}): validation accuracy while adapting (seed ${seeds[0]})`,
      xTitle: "adaptation step",
      yTitle: "validation accuracy",
    }));
  }
  figures.push(lineFigure(
    genCurves.map((g) => ({ name: `seed ${g.seed}`, x: g.step, y: g.acc })),
    {
      title: "generator: mean test accuracy over the training tasks",
      xTitle: "step",
      yTitle: "accuracy",
    },
  ));
  figures.push(tableFigure(
    ["held-out task", "arm", "mean test accuracy", "sd", "per seed", "lr"],
    rows.map((r) => [
      `${r.heldOut}: ${r.task}`,
      r.arm,
      r.mean,
      r.sd,
      r.testAcc.map((v) => v.toFixed(4)).join(", "),
      r.lr.map((v) => v ?? "—").join(", "),
    ]),
    "adaptation arms",
  ));
  figures.push(...lossFigures);
  return { rows, figures };
}
