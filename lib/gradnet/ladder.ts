/**
 * GradNet's ladder as the script runs it: the images split into base half (minus a validation
 * split), GradNet half and test set; the rungs the base reached; one GradNet per rung, each stored
 * in the run folder (`rung-<k>.json`) so a resumed run skips it.
 *
 * @module
 */

import type { DatasetSplit, ImageDataset } from "../data/dataset.ts";
import { firstN, namedOrSynthetic } from "../data/named.ts";
import { cnnCifar, countParams } from "../models/cnn_cifar.ts";
import { halves, holdOut } from "../data/splits.ts";
import type { Normalization } from "../gradients/normalize.ts";
import type * as tf from "@tensorflow/tfjs";
import type { Series } from "../plot/figures.ts";
import type { RunDir } from "../run/run_dir.ts";
import type { Rung } from "../train/callbacks.ts";
import { UserError } from "../util/errors.ts";
import { accuracy, loadSnapshot, trainBaseLadder } from "./base.ts";
import {
  type ExperimentData,
  type ExperimentOptions,
  gradNetOnSnapshot,
  type Setting,
} from "./experiment.ts";
import { type AugmentPolicy, viewShape } from "./preprocess.ts";
import { curveSeries, type RungResult } from "./report.ts";
import type { TestRule } from "./train.ts";

/** The paper's rungs (validation accuracy the base must reach) by dataset. */
export const DATASET_TARGETS: Record<string, number[]> = {
  mnist: [0.92, 0.96, 0.9894],
  fashion: [0.75, 0.8, 0.85],
  cifar10: [0.49, 0.51, 0.55, 0.62, 0.65, 0.68, 0.72, 0.74, 0.76, 0.79],
  synthetic: [0.3, 0.6],
};

/** Base-network epochs by dataset (MNIST h = 16 reaches 0.9894 on validation at about 53). */
export const DATASET_BASE_EPOCHS: Record<string, number> = {
  mnist: 60,
  fashion: 60,
  cifar10: 100,
  synthetic: 8,
};

/** The settings of a GradNet run that this module reads (the script's configuration). */
export interface LadderConfig {
  dataset: string;
  dataDir: string;
  h: number;
  targets: number[];
  baseLr: number;
  baseWeightDecay: number;
  baseBatch: number;
  baseHalveEvery: number;
  baseMaxEpochs: number;
  baseEvalEvery: number;
  seed: number;
  structure: string;
  optimizer: string;
  lr: number;
  dropout: number;
  batchNorm: boolean;
  sparsify: boolean;
  selectionPercent: number;
  normalization: string;
  exponent: number;
  augment: string;
  crop: number;
  epochs: number;
  batch: number;
  chunk: number;
  testRule: string;
  curveValImages: number;
  checkpointEvery: number;
  cache: string;
}

/** GradNet's setting (architecture, optimiser, features) from the configuration. */
export function settingOf(cfg: LadderConfig, name: string): Setting {
  return {
    name,
    structure: cfg.structure,
    optimizer: cfg.optimizer === "adam" ? { kind: "adam" } : { kind: "sgd" },
    lr: cfg.lr,
    dropout: cfg.dropout,
    batchNorm: cfg.batchNorm,
    sparsify: cfg.sparsify,
    selectionPercent: cfg.selectionPercent,
    normalization: cfg.normalization as Normalization,
    exponent: cfg.exponent,
  };
}

/** The augmentation: `auto` is the paper's for CIFAR-10 and none otherwise. */
export function policyOf(cfg: { augment: string; dataset: string }): AugmentPolicy {
  if (cfg.augment === "auto") return cfg.dataset === "cifar10" ? "cifar" : "none";
  return cfg.augment as AugmentPolicy;
}

/** How each GradNet is trained and scored. */
export function experimentOptions(cfg: LadderConfig): ExperimentOptions {
  return {
    seed: cfg.seed,
    epochs: cfg.epochs,
    batch: cfg.batch,
    chunk: cfg.chunk,
    policy: policyOf(cfg),
    crop: cfg.crop,
    testRule: cfg.testRule as TestRule,
    curveValImages: cfg.curveValImages,
    checkpointEvery: cfg.checkpointEvery,
    cache: cfg.cache as "auto" | "file" | "off",
  };
}

/** The dataset a run names (`synthetic`: a small made-up one for the smoke preset and tests). */
export function gradNetData(
  cfg: { dataset: string; dataDir: string },
): Promise<DatasetSplit> {
  return namedOrSynthetic(cfg, {
    n: 2000,
    train: 1500,
    height: 28,
    width: 28,
    channels: 1,
    numClasses: 10,
    seed: 7,
    noise: 40,
  });
}

/**
 * The base network cnn_cifar(h) trained on `baseTrain` (resumably), snapshotted when its
 * validation accuracy first reaches each target; the rungs reached and missed, and the test
 * accuracy of a snapshot (computed once per rung, stored in the run folder).
 */
export async function baseLadder(
  run: RunDir,
  cfg: LadderConfig,
  baseTrain: ImageDataset,
  val: ImageDataset,
  test: ImageDataset,
): Promise<{
  base: tf.LayersModel;
  sorted: number[];
  reached: Rung[];
  missed: number[];
  baseTest: (k: number) => Promise<{ acc: number }>;
}> {
  const policy = policyOf(cfg);
  const targets = cfg.targets.length ? cfg.targets : DATASET_TARGETS[cfg.dataset];
  const baseEpochs = cfg.baseMaxEpochs || DATASET_BASE_EPOCHS[cfg.dataset];
  console.error(`ladder (validation accuracy): ${targets.join(", ")}`);
  const base = cnnCifar(cfg.h, {
    inputShape: viewShape(baseTrain, policy, cfg.crop),
    classes: baseTrain.numClasses,
    seed: cfg.seed,
  });
  console.error(`base network cnn_cifar(${cfg.h}): ${countParams(base)} parameters`);
  const { rungs } = await trainBaseLadder(run, base, baseTrain, val, {
    seed: cfg.seed,
    lr: cfg.baseLr,
    weightDecay: cfg.baseWeightDecay,
    batch: cfg.baseBatch,
    halveEvery: cfg.baseHalveEvery,
    maxEpochs: baseEpochs,
    evalEvery: cfg.baseEvalEvery,
    targets,
    policy,
    crop: cfg.crop,
  });
  const testIdx = Array.from({ length: test.n }, (_, i) => i);
  const baseTest = (k: number) =>
    run.cachedJson(`base-rung-${k}-test.json`, async () => {
      await loadSnapshot(run, k, base);
      return { acc: await accuracy(base, test, testIdx, { policy, crop: cfg.crop }) };
    });
  return { base, ...reachedRungs(rungs, targets, baseEpochs), baseTest };
}

/**
 * The first `trainImages` training images halved — base half minus `valImages` of validation,
 * GradNet half — and the first `testImages` test images; impossible sizes are one clear line.
 */
export function ladderSplits(
  all: DatasetSplit,
  o: {
    trainImages: number;
    testImages: number;
    valImages: number;
    batch: number;
    baseBatch: number;
    seed: number;
  },
): { baseTrain: ImageDataset; val: ImageDataset; gnTrain: ImageDataset; test: ImageDataset } {
  const train = firstN(all.train, o.trainImages), test = firstN(all.test, o.testImages);
  const { first, second: gnTrain } = halves(train);
  if (!(o.valImages > 0 && o.valImages < first.n)) {
    throw new UserError(
      `--val-images=${o.valImages}: must be in 1 … ${first.n - 1} (the base half)`,
    );
  }
  const { train: baseTrain, val } = holdOut(first, o.valImages / first.n, o.seed + 101);
  const checks = [["--batch", o.batch, gnTrain.n, "GradNet"], [
    "--base-batch",
    o.baseBatch,
    baseTrain.n,
    "base",
  ]] as const;
  for (const [flag, batch, n, what] of checks) {
    if (batch > n) {
      throw new UserError(`${flag}=${batch}: more than the ${n} ${what} training images`);
    }
  }
  return { baseTrain, val, gnTrain, test };
}

/** The rungs reached, in target order, and the targets missed; none reached is one clear line. */
export function reachedRungs(
  rungs: Rung[],
  targets: number[],
  baseEpochs: number,
): { sorted: number[]; reached: Rung[]; missed: number[] } {
  const sorted = [...targets].sort((a, b) => a - b);
  const reached = sorted.map((t) => rungs.find((r) => r.target === t))
    .filter((r): r is Rung => !!r);
  if (!reached.length) {
    throw new UserError(
      `the base network reached none of the rungs ${targets.join(", ")} in ${baseEpochs} epochs`,
    );
  }
  const missed = sorted.filter((t) => !rungs.some((r) => r.target === t));
  if (missed.length) {
    console.error(`rungs not reached in ${baseEpochs} epochs: ${missed.join(", ")}`);
  }
  return { sorted, reached, missed };
}

/**
 * One GradNet per reached rung (stored as `rung-<k>.json`): the base snapshot's test accuracy,
 * GradNet's, the gain, and the validation learning curves.
 */
export async function gradNetRungs(
  run: RunDir,
  base: tf.LayersModel,
  data: ExperimentData,
  rungs: { sorted: number[]; reached: Rung[] },
  cfg: LadderConfig,
  baseTest: (k: number) => Promise<{ acc: number }>,
): Promise<{ table: RungResult[]; curves: Series[] }> {
  const table: RungResult[] = [];
  const curves: Series[] = [];
  const xo = experimentOptions(cfg);
  for (const rung of rungs.reached) {
    const k = rungs.sorted.indexOf(rung.target);
    const { row, res } = await run.cachedJson(`rung-${k}.json`, async () => {
      // seconds of this rung over every segment of a resumed run
      const t = await run.cachedJson(`rung-${k}-start.json`, () => Promise.resolve(run.elapsed()));
      const meta = await loadSnapshot(run, k, base);
      const baseAcc = (await baseTest(k)).acc;
      console.error(`rung ${k + 1} (≥${rung.target}): base test accuracy ${baseAcc.toFixed(4)}`);
      const res = await gradNetOnSnapshot(run, base, data, settingOf(cfg, "main"), xo, `rung${k}`);
      console.error(`rung ${k + 1}: base ${baseAcc.toFixed(4)} → GradNet ${res.acc.toFixed(4)}`);
      const row: RungResult = {
        rung: k + 1,
        target: rung.target,
        base_val_acc: Number(meta.val_acc),
        base_acc: baseAcc,
        gradnet_acc: res.acc,
        gain: res.acc / baseAcc - 1,
        test_rule: cfg.testRule === "true-label"
          ? "true-label (leaks the label: upper bound)"
          : cfg.testRule,
        test_images: data.test.n,
        epochs: cfg.epochs,
        features: res.path,
        steps_per_s: res.stepsPerSecond,
        seconds: run.elapsed() - t,
        base_step: Number(meta.step),
      };
      return { row, res };
    });
    table.push(row);
    curves.push(...curveSeries(`rung ${k + 1}`, res, row.base_val_acc));
  }
  return { table, curves };
}
