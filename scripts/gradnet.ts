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

import {
  COMMON_CHOICES,
  COMMON_DEFAULTS,
  COMMON_DOCS,
  COMMON_RANGES,
  runCli,
} from "../lib/config/cli.ts";
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

export const DEFAULTS = {
  ...COMMON_DEFAULTS,
  out: "results",
  resume: "",
  threads: 0,
  dataset: "mnist",
  trainImages: 0,
  testImages: 0,
  valImages: 5000,
  h: 16,
  targets: [] as number[],
  augment: "auto",
  crop: 24,
  baseLr: 0.05,
  baseWeightDecay: 5e-4,
  baseBatch: 64,
  baseHalveEvery: 25,
  baseMaxEpochs: 0,
  baseEvalEvery: 50,
  structure: "5+25+10",
  dropout: 0,
  batchNorm: false,
  optimizer: "sgd",
  lr: 0.01,
  batch: 25,
  epochs: 150,
  sparsify: true,
  selectionPercent: 15,
  normalization: "scale_power",
  exponent: 0,
  statsFrom: "gradnet-half",
  testRule: "sum",
  study: "none",
  studyRung: -1,
  curveValImages: 2000,
  cache: "auto",
  chunk: 500,
  checkpointEvery: 200,
};

export type GradNetConfig = typeof DEFAULTS;

const DOCS: Record<keyof GradNetConfig, string> = {
  ...COMMON_DOCS,
  out: "folder under which results/gradnet/<run>/ is written",
  resume:
    "continue the run in this folder with its own configuration (only --threads may be given too)",
  threads: "compute threads for the native backend (0: all cores)",
  dataset: "dataset",
  trainImages: "use the first N training images (0: all), split in halves: base net | GradNet",
  testImages: "use the first N test images (0: all)",
  valImages: "validation images held out of the base half (rungs and curves are chosen on them)",
  h: "base network width cnn_cifar(h) (paper 64; CPU setting 16)",
  targets: "ladder of base validation accuracies to snapshot at (empty: the dataset's default)",
  augment: "auto (CIFAR: crop/flip/contrast; MNIST-like: none) | none | cifar",
  crop: "crop size of the CIFAR augmentation",
  baseLr: "base network SGD learning rate",
  baseWeightDecay: "base network weight decay",
  baseBatch: "base network batch size",
  baseHalveEvery: "halve the base learning rate every this many epochs",
  baseMaxEpochs:
    "stop base training after this many epochs even if rungs are missing (0: MNIST-like 60, CIFAR-10 100)",
  baseEvalEvery:
    "measure the base validation accuracy every this many steps in epoch 1 (then ~10 % apart)",
  structure: "GradNet hidden units per block, e.g. 5+25+10 (one more part: biases get a 4th block)",
  dropout: "GradNet dropout rate on the hidden layer (0: off)",
  batchNorm: "GradNet batch normalisation (no γ) on the hidden layer",
  optimizer: "GradNet optimizer",
  lr: "GradNet learning rate (the original: SGD 0.01)",
  batch: "GradNet batch size (the original: 25)",
  epochs: "GradNet epochs over its training half (the original: 200)",
  sparsify: "keep only the top selection-percent of each layer's gradient by magnitude",
  selectionPercent: "percent kept per layer by the sparsification",
  normalization: "feature normalisation",
  exponent: "power exponent (0: 0.125 for power, 0.5 for scale_power)",
  statsFrom: "[inf] min/max statistics: one pass over the GradNet half, random labels",
  testRule: "sum (the method) | true-label (leaks the label: an upper bound) | random-label",
  study: "run one of the authors' comparisons instead of the ladder table",
  studyRung: "rung a study uses (−1: the middle one)",
  curveValImages: "validation images for GradNet's learning curve (sum rule)",
  cache: "auto: cache every label's features when views are fixed and they fit in memory | off",
  chunk: "examples per gradient-feature chunk",
  checkpointEvery: "GradNet checkpoint every this many steps",
};

const SPEC = {
  description:
    "gradnet — GradNet: a classifier on per-example gradients of a pre-trained CNN; base vs GradNet per rung",
  usage:
    "deno task gradnet [--dataset=mnist|fashion|cifar10] [--preset=smoke|default|paper] [--key=value ...]",
  defaults: DEFAULTS,
  docs: DOCS,
  choices: {
    backend: COMMON_CHOICES.backend,
    dataset: DATASETS,
    augment: ["auto", "none", "cifar"],
    optimizer: ["sgd", "adam"],
    normalization: NORMALIZATIONS,
    testRule: ["sum", "true-label", "random-label"],
    study: STUDIES,
    statsFrom: ["gradnet-half"],
    cache: ["auto", "off"],
  },
  ranges: {
    ...COMMON_RANGES,
    trainImages: { min: 0 },
    testImages: { min: 0 },
    valImages: { min: 1 },
    h: { min: 1 },
    targets: { min: 0, max: 1, minOpen: true, maxOpen: true },
    crop: { min: 1 },
    baseLr: { min: 0, minOpen: true },
    baseWeightDecay: { min: 0 },
    baseBatch: { min: 1 },
    baseHalveEvery: { min: 1 },
    baseMaxEpochs: { min: 0 },
    baseEvalEvery: { min: 1 },
    dropout: { min: 0, max: 1, maxOpen: true },
    lr: { min: 0, minOpen: true },
    batch: { min: 1 },
    epochs: { min: 1 },
    selectionPercent: { min: 0, max: 100, minOpen: true },
    exponent: { min: 0 },
    studyRung: { min: -1 },
    curveValImages: { min: 0 },
    chunk: { min: 1 },
    checkpointEvery: { min: 1 },
  },
  integers: [
    "seed",
    "threads",
    "trainImages",
    "testImages",
    "valImages",
    "h",
    "crop",
    "baseBatch",
    "baseHalveEvery",
    "baseMaxEpochs",
    "baseEvalEvery",
    "batch",
    "epochs",
    "studyRung",
    "curveValImages",
    "chunk",
    "checkpointEvery",
  ] as const,
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
    default: "MNIST, h = 16, 5+25+10, 150 epochs: about 13 minutes on 2 cores, 7 GB",
    paper: "the paper's sizes: h = 64, 5+100+25, 200 epochs (features per visit: days on a CPU)",
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
