/**
 * GUNN — Gradually Updated Neural Networks (Qiao et al., ICML 2018; spec: shared/papers/gunn.md,
 * code: joe-siyuan-qiao/GUNN).
 *
 *   deno task gunn --data-dir=DIR                 # mini-GUNN vs mini-SUNN on CIFAR-10, 3 seeds
 *   deno task gunn --dataset=fashion --image-size=14  # the same on Fashion-MNIST (no download)
 *   deno task gunn --preset=paper --data-dir=DIR  # GUNN-15 at 32×32, 300 epochs (a GPU's job)
 *   deno task gunn --preset=smoke                 # seconds, synthetic images
 *
 * The claim under test: at equal parameters and FLOPs, updating a layer's channels segment after
 * segment (GUNN) beats updating them all at once from the old input (SUNN). Each seed trains both
 * arms from the same initial weights on the same batches; the report gives test accuracy
 * mean ± sd per arm, the per-seed difference, learning curves, parameter counts and images/s.
 *
 * @module
 */

import { COMMON_KEYS, runCli } from "../lib/config/cli.ts";
import { declareConfig, key } from "../lib/config/declare.ts";
import { RunDir } from "../lib/run/run_dir.ts";
import { firstN, namedOrSynthetic } from "../lib/data/named.ts";
import { startRun } from "../lib/run/start.ts";
import type { DatasetSplit } from "../lib/data/dataset.ts";
import {
  GUNN15,
  type GunnArchitecture,
  gunnNetwork,
  gunnParamCount,
  MINI_GUNN,
  SMALL_GUNN,
  trainableCount,
} from "../lib/models/gunn.ts";
import type { UpdateMode } from "../lib/layers/gunn.ts";
import { shrink, viewOf } from "../lib/gunn/data.ts";
import { type ArmResult, trainGunnArm } from "../lib/gunn/train.ts";
import {
  type ArmSummary,
  curveFigures,
  summarizeArms,
  summaryMarkdown,
} from "../lib/gunn/report.ts";
import { meanSd } from "../lib/util/stats.ts";
import { barFigure, type Figure, tableFigure } from "../lib/plot/figures.ts";
import { writeFiguresHtml } from "../lib/plot/html.ts";
import { lineFigureSvg } from "../lib/plot/svg.ts";
import { UserError } from "../lib/util/errors.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const DATASETS = ["cifar10", "cifar100", "fashion", "mnist", "synthetic"] as const;
const ARCHS: Record<string, GunnArchitecture> = {
  mini: MINI_GUNN,
  small: SMALL_GUNN,
  gunn15: GUNN15,
};
const ARCH_NAMES: Record<string, string> = {
  mini: "mini-GUNN",
  small: "small-GUNN",
  gunn15: "GUNN-15",
};
const ARMS: Record<string, UpdateMode> = { GUNN: "gradual", SUNN: "simultaneous" };

const CONFIG = declareConfig({
  ...COMMON_KEYS,
  out: key("results", "folder under which results/gunn/<run>/ is written"),
  dataset: key(
    "cifar10",
    "cifar10 | cifar100 (--data-dir or download) | fashion | mnist | synthetic",
    { choices: DATASETS },
  ),
  arch: key(
    "mini",
    "mini (stem 16, widths 48/60/72, 6 channels per segment) | small (widths 24/30/36) | gunn15 (the paper's 1.6M model)",
    { choices: ["mini", "small", "gunn15"] as const },
  ),
  imageSize: key(16, "shrink images to this side by block averaging (0: as stored, 32 for CIFAR)", {
    int: true,
    min: 0,
  }),
  trainImages: key(10000, "train on the first N training images (0: all)", { int: true, min: 0 }),
  testImages: key(2000, "test on the first N test images (0: all)", { int: true, min: 0 }),
  epochs: key(8, "epochs per arm and seed (lr ÷10 at 50 % and 75 %)", { int: true, min: 1 }),
  seeds: key(3, "seeds --seed, --seed+1, …; each trains both arms", { int: true, min: 1 }),
  batch: key(64, "batch size (the authors: 64)", { int: true, min: 1 }),
  lr: key(0.1, "initial learning rate (the authors: 0.1)", { min: 0, minOpen: true }),
  momentum: key(0.9, "Nesterov momentum (the authors: 0.9)", { min: 0, max: 1, maxOpen: true }),
  weightDecay: key(1e-4, "L2 weight decay on every parameter (the authors: 1e-4)", { min: 0 }),
  jigsaw: key(true, "random cyclic shifts with probability 2/3 (the authors' CIFAR pipeline)"),
  checkpointEvery: key(100, "checkpoint every this many steps (and at every epoch end)", {
    int: true,
    min: 1,
  }),
});

export const DEFAULTS = CONFIG.defaults;

export type GunnConfig = typeof DEFAULTS;

const SPEC = {
  description: "gunn — gradually (GUNN) vs simultaneously (SUNN) updated layers, equal parameters",
  usage:
    "deno task gunn [--dataset=cifar10 --data-dir=DIR] [--preset=smoke|default|compare|paper] [--key=value ...]",
  ...CONFIG,
  presets: {
    smoke: {
      dataset: "synthetic",
      imageSize: 0,
      trainImages: 96,
      testImages: 48,
      epochs: 1,
      seeds: 2,
      batch: 32,
      checkpointEvery: 2,
    },
    default: {},
    compare: { arch: "small", trainImages: 0, testImages: 0, epochs: 40, seeds: 4 },
    paper: {
      arch: "gunn15",
      imageSize: 0,
      trainImages: 0,
      testImages: 0,
      epochs: 300,
      seeds: 1,
    },
  } as Record<string, Partial<GunnConfig>>,
  presetDocs: {
    smoke: "seconds: synthetic 16×16 images, 2 epochs, 2 seeds (tests)",
    default:
      "mini-GUNN on 10,000 CIFAR-10 images at 16×16, 8 epochs, 3 seeds: about 40 min on 2 cores",
    compare:
      "the converged comparison: small-GUNN on all 50,000 / 10,000 CIFAR-10 images at 16×16, 40 epochs, 4 seeds (about 3 h on 2 cores; 1 h 30 as two processes of 2 seeds, 1 thread each)",
    paper: "GUNN-15 on all of CIFAR at 32×32, 300 epochs (weeks on a CPU)",
  },
};

// ---------------------------------------------------------------------------------------------
// Data

/** The run's dataset (see namedOrSynthetic). */
export function loadData(cfg: GunnConfig): Promise<DatasetSplit> {
  return namedOrSynthetic(cfg, {
    n: 400,
    train: 300,
    height: 16,
    width: 16,
    channels: 3,
    numClasses: 4,
    seed: 11,
    noise: 40,
  });
}

export interface GunnResult {
  run: RunDir;
  title: string;
  arms: ArmSummary[];
  /** GUNN − SUNN test accuracy, per seed */
  differences: number[];
  figures: Figure[];
  markdown: string;
}

// ---------------------------------------------------------------------------------------------
// Main

export async function main(cfgIn: GunnConfig, o: { quiet?: boolean } = {}): Promise<GunnResult> {
  const { run, cfg } = await startRun("gunn", cfgIn, DEFAULTS as GunnConfig);
  if (cfg.seeds < 1) throw new UserError(`--seeds ${cfg.seeds}: need at least one seed`);

  // data
  const all = await loadData(cfg);
  const train = shrink(firstN(all.train, cfg.trainImages), cfg.imageSize);
  const test = shrink(firstN(all.test, cfg.testImages), cfg.imageSize);
  const view = viewOf(cfg, train);
  const arch = ARCHS[cfg.arch];
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  const title = `${ARCH_NAMES[cfg.arch]} on ${cfg.dataset} ` +
    `(${train.n} train / ${test.n} test, ${train.height}×${train.width}, ${cfg.epochs} epochs)`;
  const params = gunnParamCount(arch, train.numClasses, train.channels);
  console.error(`${title}: ${params.toLocaleString("en-US")} parameters per arm`);

  // train: every seed, both arms
  const seeds = Array.from({ length: cfg.seeds }, (_, i) => cfg.seed + i);
  const results = new Map<string, ArmResult>();
  for (const seed of seeds) {
    for (const [arm, mode] of Object.entries(ARMS)) {
      const tag = `${arm}-seed${seed}`;
      const r = await run.cachedJson(`${tag}.json`, async () => {
        const model = gunnNetwork({ arch, mode, inputShape, classes: train.numClasses, seed });
        if (trainableCount(model) !== params) {
          throw new Error(`${arm}: built ${trainableCount(model)} parameters, expected ${params}`);
        }
        const r = await trainGunnArm(run, model, train, test, {
          seed,
          epochs: cfg.epochs,
          batch: cfg.batch,
          lr: cfg.lr,
          momentum: cfg.momentum,
          weightDecay: cfg.weightDecay,
          view,
          checkpointEvery: cfg.checkpointEvery,
          tag,
          label: `${arm} seed ${seed}`,
          quiet: o.quiet,
        });
        model.dispose();
        if (!o.quiet) {
          console.error(
            `  ${arm} seed ${seed}: test accuracy ${r.testAcc.toFixed(4)}, ${
              r.imagesPerSecond.toFixed(1)
            } images/s`,
          );
        }
        return r;
      });
      results.set(tag, r);
    }
  }

  // report
  const { arms, differences } = summarizeArms(results, ARMS, seeds, params);
  const markdown = summaryMarkdown(title, arms, differences, seeds);
  const curves = curveFigures(results, title);
  const figures = [
    barFigure(
      ["test accuracy"],
      arms.map((a) => ({ name: a.arm, values: [a.mean], errors: [Number.isNaN(a.sd) ? 0 : a.sd] })),
      { title: `${title}: mean ± sd over ${seeds.length} seed(s)`, yTitle: "test accuracy" },
    ),
    ...curves,
    tableFigure(
      ["arm", "parameters", "mean", "sd", "per seed", "images/s"],
      arms.map((a) => [
        a.arm,
        a.params,
        a.mean,
        a.sd,
        a.testAcc.map((v) => v.toFixed(4)).join(", "),
        a.imagesPerSecond,
      ]),
      "GUNN vs SUNN",
    ),
  ];
  await writeFiguresHtml(run.file("summary.html"), figures, "GUNN vs SUNN");
  // static copies of the curves for pages that cannot run plotly (the README's figures)
  await run.writeText("test-accuracy.svg", lineFigureSvg(curves[0]));
  await run.writeText("train-loss.svg", lineFigureSvg(curves[1]));
  await run.writeText("summary.md", markdown);
  const seconds = run.elapsed();
  await run.complete({ title, arms, differences, seconds });
  if (!o.quiet) console.log(markdown + `\nwall time ${seconds.toFixed(0)} s — ${run.path}`);
  return { run, title, arms, differences, figures, markdown };
}

if (import.meta.main) await runCli(SPEC, (cfg) => main(cfg));
export { meanSd, SPEC as GUNN_SPEC };
