/**
 * GradNet — a classifier on the per-example gradient vectors of a pre-trained CNN
 * (Aleksziev, Daróczy, Benczúr; spec: shared/papers/gradnet.md; code: daroczyb/gradnet).
 *
 *   deno task gradnet                                   # MNIST, CPU-sized (h = 16), 3-rung ladder
 *   deno task gradnet --dataset=cifar10 --data-dir=DIR  # CIFAR-10, 4 rungs
 *   deno task gradnet --preset=paper                    # h = 64, 5+100+25, 200 epochs
 *   deno task gradnet --study=normalization             # one of the authors' comparisons
 *   deno task gradnet --resume=results/gradnet/<run>    # continue an interrupted run
 *
 * Steps: train the base network cnn_cifar(h) on the first half of the training set, snapshotting
 * it when its validation accuracy first reaches each rung of a ladder; for each snapshot, train
 * GradNet on gradient features of the second half (fresh random label per visit, true label as
 * target) and test it with the sum-of-logits rule over all 10 label gradients; report base vs
 * GradNet.
 *
 * @module
 */

import { COMMON_KEYS, runCli } from "../lib/config/cli.ts";
import { declareConfig, key } from "../lib/config/declare.ts";
import type { RunDir } from "../lib/run/run_dir.ts";
import { startRun } from "../lib/run/start.ts";
import type { DatasetSplit } from "../lib/data/dataset.ts";
import { parseStructure } from "../lib/models/gradnet.ts";
import { NORMALIZATIONS } from "../lib/gradients/normalize.ts";
import type { ExperimentData } from "../lib/gradnet/experiment.ts";
import { type RungResult, tableMarkdown, writeCurves, writeTable } from "../lib/gradnet/report.ts";
import { runStudy, type Study, STUDY_NAMES } from "../lib/gradnet/study.ts";
import {
  baseLadder,
  experimentOptions,
  gradNetData,
  gradNetRungs,
  ladderSplits,
  settingOf,
} from "../lib/gradnet/ladder.ts";
import type { Series } from "../lib/plot/figures.ts";
import { UserError } from "../lib/util/errors.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const DATASETS = ["mnist", "fashion", "cifar10", "synthetic"] as const;
const STUDIES = ["none", ...STUDY_NAMES] as const;

const CONFIG = declareConfig({
  ...COMMON_KEYS,
  out: key("results", "folder under which results/gradnet/<run>/ is written"),
  dataset: key("mnist", "dataset", { choices: DATASETS }),
  trainImages: key(
    0,
    "use the first N training images (0: all), split in halves: base net | GradNet",
    { int: true, min: 0 },
  ),
  testImages: key(0, "use the first N test images (0: all)", { int: true, min: 0 }),
  valImages: key(
    5000,
    "validation images held out of the base half (rungs and curves are chosen on them)",
    { int: true, min: 1 },
  ),
  h: key(16, "base network width cnn_cifar(h) (paper 64; CPU setting 16)", { int: true, min: 1 }),
  targets: key(
    [] as number[],
    "ladder of base validation accuracies to snapshot at (empty: the dataset's default)",
    { min: 0, max: 1, minOpen: true, maxOpen: true },
  ),
  augment: key("auto", "auto (CIFAR: crop/flip/contrast; MNIST-like: none) | none | cifar", {
    choices: ["auto", "none", "cifar"] as const,
  }),
  crop: key(24, "crop size of the CIFAR augmentation", { int: true, min: 1 }),
  baseLr: key(0.05, "base network SGD learning rate", { min: 0, minOpen: true }),
  baseWeightDecay: key(5e-4, "base network weight decay", { min: 0 }),
  baseBatch: key(64, "base network batch size", { int: true, min: 1 }),
  baseHalveEvery: key(25, "halve the base learning rate every this many epochs", {
    int: true,
    min: 1,
  }),
  baseMaxEpochs: key(
    0,
    "stop base training after this many epochs even if rungs are missing (0: MNIST-like 60, CIFAR-10 100)",
    { int: true, min: 0 },
  ),
  baseEvalEvery: key(
    50,
    "measure the base validation accuracy every this many steps in epoch 1 (then ~10 % apart)",
    { int: true, min: 1 },
  ),
  structure: key(
    "5+25+10",
    "GradNet hidden units per block, e.g. 5+25+10 (one more part: biases get a 4th block)",
  ),
  dropout: key(0, "GradNet dropout rate on the hidden layer (0: off)", {
    min: 0,
    max: 1,
    maxOpen: true,
  }),
  batchNorm: key(false, "GradNet batch normalisation (no γ) on the hidden layer"),
  optimizer: key("sgd", "GradNet optimizer", { choices: ["sgd", "adam"] as const }),
  lr: key(0.01, "GradNet learning rate (the original: SGD 0.01)", { min: 0, minOpen: true }),
  batch: key(25, "GradNet batch size (the original: 25)", { int: true, min: 1 }),
  epochs: key(200, "GradNet epochs over its training half (the original: 200)", {
    int: true,
    min: 1,
  }),
  sparsify: key(true, "keep only the top selection-percent of each layer's gradient by magnitude"),
  selectionPercent: key(15, "percent kept per layer by the sparsification", {
    min: 0,
    max: 100,
    minOpen: true,
  }),
  normalization: key("scale_power", "feature normalisation", { choices: NORMALIZATIONS }),
  exponent: key(0, "power exponent (0: 0.125 for power, 0.5 for scale_power)", { min: 0 }),
  statsFrom: key(
    "gradnet-half",
    "[inf] min/max statistics: one pass over the GradNet half, random labels",
    { choices: ["gradnet-half"] as const },
  ),
  testRule: key(
    "sum",
    "sum (the method) | true-label (leaks the label: an upper bound) | random-label",
    { choices: ["sum", "true-label", "random-label"] as const },
  ),
  study: key("none", "run one of the authors' comparisons instead of the ladder table", {
    choices: STUDIES,
  }),
  studyRung: key(-1, "rung a study uses (−1: the middle one)", { int: true, min: -1 }),
  curveValImages: key(2000, "validation images for GradNet's learning curve (sum rule)", {
    int: true,
    min: 0,
  }),
  cache: key(
    "auto",
    "auto: cache every label's features when views are fixed (in memory, or in a file in the run folder when they do not fit) | file: always in a file | off",
    { choices: ["auto", "file", "off"] as const },
  ),
  chunk: key(500, "examples per gradient-feature chunk", { int: true, min: 1 }),
  checkpointEvery: key(200, "GradNet checkpoint every this many steps", { int: true, min: 1 }),
});

export const DEFAULTS = CONFIG.defaults;

export type GradNetConfig = typeof DEFAULTS;

const SPEC = {
  description:
    "gradnet — GradNet: a classifier on per-example gradients of a pre-trained CNN; base vs GradNet per rung",
  usage:
    "deno task gradnet [--dataset=mnist|fashion|cifar10] [--preset=smoke|default|paper] [--key=value ...]",
  ...CONFIG,
  presets: {
    smoke: {
      dataset: "synthetic",
      valImages: 150,
      h: 4,
      baseMaxEpochs: 8,
      baseEvalEvery: 3,
      structure: "5+10+5",
      epochs: 30,
      curveValImages: 150,
      chunk: 100,
      checkpointEvery: 4,
    },
    default: {},
    paper: { h: 64, structure: "5+100+25", epochs: 200 },
  } as Record<string, Partial<GradNetConfig>>,
  presetDocs: {
    smoke: "seconds, tiny synthetic data (tests)",
    default: "MNIST, h = 16, 5+25+10, 200 epochs (the paper's): about 12 minutes on 2 cores, 7 GB",
    paper:
      "the paper's sizes: h = 64, 5+100+25, 200 epochs (training features in a ~38.5 GB file: about 3 hours on 2 cores)",
  },
};

// ---------------------------------------------------------------------------------------------
// Main

/** What a run returns (for notebooks and tests). */
export interface GradNetResult {
  run: RunDir;
  table: RungResult[];
  curves: Series[];
  title: string;
  study?: { name: string; baseAcc: number; results: Record<string, number>; curves: Series[] };
}

/**
 * Runs the experiment. `o.data` replaces the dataset that `cfg.dataset` names (notebooks, tests:
 * any train/test split of images).
 */
export async function main(
  cfgIn: GradNetConfig,
  o: { quiet?: boolean; data?: DatasetSplit } = {},
): Promise<GradNetResult> {
  try {
    parseStructure(cfgIn.structure);
  } catch (e) {
    throw new UserError(`--structure=${cfgIn.structure}: ${(e as Error).message}`);
  }
  const { run, cfg } = await startRun("gradnet", cfgIn, DEFAULTS as GradNetConfig);

  // data: base half (minus a validation split) | GradNet half; the test set scores models once
  const all = o.data ?? await gradNetData(cfg);
  const { baseTrain, val, gnTrain, test } = ladderSplits(all, cfg);
  console.error(
    `${cfg.dataset}: base net trains on ${baseTrain.n} (validation ${val.n}), GradNet on ${gnTrain.n}, tested on ${test.n} images`,
  );

  // base network and its ladder of snapshots (chosen on the validation split)
  const ladder = await baseLadder(run, cfg, baseTrain, val, test);
  const { base, sorted, reached, missed, baseTest } = ladder;
  const data: ExperimentData = { gnTrain, val, test };

  if (cfg.study !== "none") {
    const r = cfg.studyRung >= 0
      ? Math.min(cfg.studyRung, reached.length - 1)
      : Math.floor((reached.length - 1) / 2);
    const k = sorted.indexOf(reached[r].target);
    const res = await runStudy(run, base, data, experimentOptions(cfg), {
      study: cfg.study as Study,
      base: settingOf(cfg, "default"),
      rung: k,
      baseAcc: (await baseTest(k)).acc,
      title: `GradNet ${cfg.study} comparison — ${cfg.dataset}`,
    });
    const summary = { ...res.summary, seconds: run.elapsed() };
    await run.complete(summary);
    if (!o.quiet) console.log(JSON.stringify(summary, null, 2));
    return { run, table: [], curves: res.curves, title: `study ${cfg.study}`, study: res.study };
  }

  // one GradNet per rung
  const { table, curves } = await gradNetRungs(run, base, data, { sorted, reached }, cfg, baseTest);
  const title =
    `GradNet on ${cfg.dataset} — cnn_cifar(${cfg.h}), ${cfg.structure}, ${cfg.epochs} epochs`;
  const md = await writeTable(run, table, title);
  await writeCurves(run, "gradnet-curves", curves, {
    title: `GradNet learning curves — ${cfg.dataset} (sum rule on ${
      Math.min(cfg.curveValImages, val.n)
    } validation images)`,
    xTitle: "GradNet iterations",
    yTitle: "accuracy",
    colorGroup: 3,
  });
  const seconds = run.elapsed();
  await run.complete({ table, seconds, missed_rungs: missed });
  if (!o.quiet) console.log(md + `\nwall time ${seconds.toFixed(0)} s — ${run.path}`);
  return { run, table, curves, title };
}

if (import.meta.main) await runCli(SPEC, (cfg) => main(cfg));
export { SPEC as GRADNET_SPEC, tableMarkdown };
