/**
 * One GradNet trained on one base snapshot (spec §2), the way the script runs it: features,
 * training with its learning curve on the validation split, and a single score on the test set.
 *
 * Three paths:
 * - **cached** (fixed views — MNIST, Fashion-MNIST, CIFAR with `--augment=none` — and the paper's
 *   GradNet: no dropout, no batch norm, plain SGD, sum rule): every label's feature of every
 *   example is computed once (cache.ts) and GradNet trains on the sparse rows on the host
 *   (sparse.ts);
 * - **augmented** (CIFAR with the paper's augmentation): each visit's feature comes from a fresh
 *   augmented view; GradNet still trains on sparse rows on the host;
 * - **tfjs** (the studies' dropout / batch-norm / Adam variants, and the ablation test rules):
 *   features per visit, GradNet in TF.js on dense rows.
 * In every path the learning curve is measured on the validation split and the test set scores
 * the final GradNet once.
 *
 * @module
 */

import type { LayersModel } from "../util/tf_types.ts";
import type { ImageDataset } from "../data/dataset.ts";
import type { RunDir } from "../run/run_dir.ts";
import { GradNet, parseStructure } from "../models/gradnet.ts";
import { netFromModel } from "../gradients/network.ts";
import type { CoordinateStats, Normalization } from "../gradients/normalize.ts";
import { encodeBundle } from "../run/bundle.ts";
import type { OptimizerConfig } from "../train/optimizers.ts";
import { UserError } from "../util/errors.ts";
import { Featurizer } from "./features.ts";
import { FeatureCache } from "./cache.ts";
import { FileFeatureCache, freeDiskBytes } from "./file_cache.ts";
import { join } from "node:path";
import { type AugmentPolicy, testView } from "./preprocess.ts";
import {
  accuracyOf,
  augmentedRows,
  cachedRows,
  gradientStatistics,
  gradNetPredict,
  prefetchedRows,
  sumRuleAccuracy,
  type TestRule,
  trainGradNet,
  trainGradNetSparse,
  type TrainRows,
} from "./train.ts";
import { SparseGradNet } from "./sparse.ts";
import { Progress } from "../util/progress.ts";

/** One GradNet setting (the method, or one variant of a study). */
export interface Setting {
  /** row name in the table */
  name: string;
  /** hidden units of the blocks, e.g. "5+100+25" */
  structure: string;
  /** optimizer and its settings */
  optimizer: OptimizerConfig;
  /** learning rate */
  lr: number;
  /** dropout rate of the hidden layer */
  dropout: number;
  /** batch normalisation of the hidden layer */
  batchNorm: boolean;
  /** keep only the largest entries of each block */
  sparsify: boolean;
  /** percent of entries kept per block */
  selectionPercent: number;
  /** how features are normalised */
  normalization: Normalization;
  /** exponent of the power normalisations (0: their default) */
  exponent: number;
}

/** What a GradNet run needs from the script's configuration. */
export interface ExperimentOptions {
  /** seed of initialisation, batches and augmentation */
  seed: number;
  /** GradNet epochs */
  epochs: number;
  /** GradNet batch size */
  batch: number;
  /** examples per all-label gradient batch (at most) */
  chunk: number;
  /** how training views are augmented */
  policy: AugmentPolicy;
  /** crop size of the views (pixels) */
  crop: number;
  /** how test predictions combine the label rows */
  testRule: TestRule;
  /** validation images for the learning curve */
  curveValImages: number;
  /** checkpoint every this many GradNet steps */
  checkpointEvery: number;
  /**
   * "auto": cache the training features when views are fixed — in memory when they fit, else in
   * a file in the run folder when the disk holds it; "file": always in a file; "off": never
   */
  cache: "auto" | "file" | "off";
}

/** The data of one GradNet run. */
export interface ExperimentData {
  /** GradNet's training images */
  gnTrain: ImageDataset;
  /** validation images (snapshots and the learning curve) */
  val: ImageDataset;
  /** test images, scored once */
  test: ImageDataset;
}

/** A learning-curve point: after `step` GradNet iterations. */
export interface CurvePoint {
  /** epoch (1-based) */
  epoch: number;
  /** GradNet steps so far */
  step: number;
  /** validation accuracy */
  val_acc: number;
  /** mean training loss of the epoch */
  train_loss: number;
  /** training accuracy of the epoch */
  train_acc: number;
}

/** The result of one GradNet run. */
export interface SettingResult {
  /** sum-rule (or the chosen rule's) accuracy on the test set, measured once */
  acc: number;
  /** validation curve, one point per measured epoch */
  curve: CurvePoint[];
  /**
   * how the features were trained: cached rows (in memory, or "cached-file"), recomputed
   * augmented rows, or TF.js layers
   */
  path: "cached" | "cached-file" | "augmented" | "tfjs";
  /** bytes of cached features */
  cacheBytes: number;
  /** GradNet training steps per second (without feature computation on the cached path) */
  stepsPerSecond: number;
}

/**
 * How a setting runs: "cached" (every feature computed once), "augmented" (training features per
 * visit from augmented views, GradNet on sparse rows), or "tfjs" (the studies' variants), with
 * the reason when it is not "cached".
 */
export function featurePath(
  o: ExperimentOptions,
  s: Setting,
): { path: "cached" | "augmented" | "tfjs"; why: string } {
  if (o.testRule !== "sum") return { path: "tfjs", why: `test rule ${o.testRule}` };
  if (s.dropout > 0 || s.batchNorm || s.optimizer.kind !== "sgd") {
    return { path: "tfjs", why: "dropout, batch norm and Adam run in TF.js" };
  }
  if (o.policy !== "none") {
    return { path: "augmented", why: "augmented views change on every visit" };
  }
  if (o.cache === "off") return { path: "augmented", why: "--cache=off" };
  return { path: "cached", why: "" };
}

async function statistics(
  run: RunDir,
  file: string,
  f: Featurizer,
  ds: ImageDataset,
  o: { seed: number; chunk: number; policy: AugmentPolicy; crop: number },
): Promise<CoordinateStats> {
  const b = await run.readBundle<{ count: number }>(file);
  if (b) {
    const g = (k: string) => b.tensors.get(k)!.values.slice();
    return { count: b.meta.count, min: g("min"), max: g("max"), mean: g("mean"), std: g("std") };
  }
  const s = await gradientStatistics(f, ds, o);
  const arr = (name: string, values: Float32Array) => ({ name, shape: [values.length], values });
  await run.writeBytes(
    file,
    encodeBundle({ count: s.count }, [
      arr("min", s.min),
      arr("max", s.max),
      arr("mean", s.mean),
      arr("std", s.std),
    ]),
  );
  return s;
}

/** Evaluation epochs of a curve: every epoch up to 10, then about 40 more points. */
export function curveEpochs(epochs: number): (epoch: number) => boolean {
  const every = Math.max(1, Math.floor(epochs / 40));
  return (e) => e <= 10 || e % every === 0 || e === epochs;
}

/** Trains one GradNet setting on the base network as it stands; scores it once on the test set. */
export async function gradNetOnSnapshot(
  run: RunDir,
  base: LayersModel,
  data: ExperimentData,
  s: Setting,
  o: ExperimentOptions,
  tag: string,
): Promise<SettingResult> {
  const hidden = parseStructure(s.structure);
  const ops = netFromModel(base);
  const kernelBlocks = ops.filter((op) => op.kind === "conv" || op.kind === "dense").length;
  if (hidden.length !== kernelBlocks && hidden.length !== kernelBlocks + 1) {
    throw new UserError(
      `--structure ${s.structure}: ${hidden.length} blocks, the base network has ${kernelBlocks} layers (or ${
        kernelBlocks + 1
      } with a bias block)`,
    );
  }
  const biasBlock = hidden.length === kernelBlocks + 1;
  const f = new Featurizer(ops, {
    sparsify: s.sparsify,
    selectionPercent: s.selectionPercent,
    normalization: s.normalization,
    exponent: s.exponent || undefined,
  }, biasBlock ? { includeBias: true, biasLast: true } : {});
  const kernels = f.layout.blocks.filter((b) => b.part === "kernel").map((b) => b.size);
  const biases = f.layout.blocks.filter((b) => b.part === "bias").reduce((a, b) => a + b.size, 0);
  const net = new GradNet({
    blockSizes: biasBlock ? [...kernels, biases] : kernels,
    hidden,
    classes: data.test.numClasses,
    dropout: s.dropout,
    batchNorm: s.batchNorm,
    seed: o.seed + 17,
  });
  const name = `gradnet-${tag}-${s.name}`;
  const view = { policy: o.policy, crop: o.crop };
  const valIdx = Array.from({ length: Math.min(o.curveValImages, data.val.n) }, (_, i) => i);
  const classes = data.test.numClasses;
  const build = (ds: ImageDataset, n: number, label: string, stats: boolean) =>
    FeatureCache.build(f, (idx) => testView(ds, idx, view), n, classes, {
      chunk: o.chunk,
      label,
      statistics: stats,
    });
  try {
    let { path, why } = featurePath(o, s);
    const share = s.sparsify ? s.selectionPercent / 100 : 1;
    const perRow = Math.ceil(share * f.layout.size);
    const cachedExamples = (path === "cached" ? data.gnTrain.n : 0) + valIdx.length;
    const need = FeatureCache.estimateBytes(cachedExamples, classes, f.layout.size, perRow);
    const budget = 0.6 * Deno.systemMemoryInfo().total;
    let store: "memory" | "file" = o.cache === "file" ? "file" : "memory";
    if (path === "cached" && store === "memory" && need > budget) {
      // too big for memory: a file in the run folder when the disk holds it (with a margin)
      const fileNeed = FileFeatureCache.estimateBytes(data.gnTrain.n, classes, perRow);
      const free = freeDiskBytes(run.path);
      const inMemory = `caching would take ${
        (need / 2 ** 30).toFixed(1)
      } GiB, more than 60 % of memory`;
      if (free !== null && fileNeed < 0.8 * free) {
        store = "file";
        console.error(
          `${name}: ${inMemory}: training features cached in a file of ~${
            (fileNeed / 2 ** 30).toFixed(1)
          } GiB`,
        );
      } else {
        path = "augmented";
        why = `${inMemory}, and ${
          (fileNeed / 2 ** 30).toFixed(1)
        } GiB on disk, more than 80 % of the ${
          free === null ? "(unknown)" : (free / 2 ** 30).toFixed(1)
        } GiB free`;
      }
    }
    if (path !== "cached") console.error(`${name}: training features per visit (${why})`);
    if (path === "tfjs") return await onTheFly();
    return await sparse(path, store);
  } finally {
    net.dispose();
  }

  async function sparse(
    path: "cached" | "augmented",
    store: "memory" | "file",
  ): Promise<SettingResult> {
    let rows: TrainRows;
    let trainBytes = 0;
    let fileCache: FileFeatureCache | null = null;
    if (path === "cached" && store === "file") {
      fileCache = await FileFeatureCache.build(
        f,
        (idx) => testView(data.gnTrain, idx, view),
        data.gnTrain.n,
        classes,
        {
          chunk: o.chunk,
          label: `${tag} features (train, to file)`,
          path: join(run.path, `${name}-features.bin`),
        },
      );
      rows = prefetchedRows(fileCache, data.gnTrain.labels);
      trainBytes = fileCache.bytes;
    } else if (path === "cached") {
      const trainCache = await build(data.gnTrain, data.gnTrain.n, `${tag} features (train)`, true);
      rows = cachedRows({ cache: trainCache, labels: data.gnTrain.labels });
      trainBytes = trainCache.bytes;
    } else {
      await setStatistics();
      rows = augmentedRows(f, data.gnTrain, { seed: o.seed, chunk: o.chunk, ...view });
    }
    let valCache: FeatureCache, history: Awaited<ReturnType<typeof trainGradNetSparse>>["history"];
    try {
      valCache = await build(data.val, valIdx.length, `${tag} features (validation)`, false);
      ({ history } = await trainGradNetSparse(
        run,
        net,
        rows,
        { cache: valCache, labels: data.val.labels },
        {
          seed: o.seed,
          epochs: o.epochs,
          batch: o.batch,
          lr: s.lr,
          evalAt: curveEpochs(o.epochs),
          name,
        },
      ));
    } finally {
      // the file is rebuilt on resume: free the disk now
      fileCache?.close();
    }
    // the test set: features computed once, chunk by chunk, and the final model scored once
    const final = await SparseGradNet.fromGradNet(net);
    let correct = 0;
    const bar = new Progress(`${tag} test (sum rule)`, data.test.n, { unit: "img" });
    for (let s = 0; s < data.test.n; s += o.chunk) {
      const n = Math.min(o.chunk, data.test.n - s);
      const part = await FeatureCache.build(
        f,
        (idx) => testView(data.test, idx.map((i) => s + i), view),
        n,
        classes,
        { chunk: o.chunk, label: "", quiet: true },
      );
      const labels = data.test.labels.subarray(s, s + n);
      correct += Math.round(n * sumRuleAccuracy(final, { cache: part, labels }));
      bar.tick(n);
    }
    bar.finish();
    const acc = correct / data.test.n;
    const seconds = history.reduce((a, h) => a + h.seconds, 0);
    const steps = history.length ? history[history.length - 1].step : 0;
    return {
      acc,
      curve: history.filter((h) => h.val_acc !== undefined).map((h) => ({
        epoch: h.epoch,
        step: h.step,
        val_acc: h.val_acc,
        train_loss: h.train_loss,
        train_acc: h.train_acc,
      })),
      path: fileCache ? "cached-file" : path,
      cacheBytes: trainBytes + valCache.bytes,
      stepsPerSecond: steps / Math.max(seconds, 1e-9),
    };
  }

  async function setStatistics(): Promise<void> {
    const statsTag = `${tag}-${s.sparsify ? s.selectionPercent : "all"}${biasBlock ? "-bias" : ""}`;
    f.stats = await statistics(run, `stats-${statsTag}.bin`, f, data.gnTrain, {
      seed: o.seed,
      chunk: o.chunk,
      ...view,
    });
  }

  async function onTheFly(): Promise<SettingResult> {
    await setStatistics();
    const state = await trainGradNet(run, net, f, data.gnTrain, data.val, {
      seed: o.seed,
      epochs: o.epochs,
      batch: o.batch,
      lr: s.lr,
      optimizer: s.optimizer,
      chunk: o.chunk,
      ...view,
      curveImages: valIdx.length,
      checkpointEvery: o.checkpointEvery,
      name,
    });
    const testIdx = Array.from({ length: data.test.n }, (_, i) => i);
    const preds = await gradNetPredict(net, f, data.test, testIdx, {
      rule: o.testRule,
      ...view,
      seed: o.seed,
      label: `GradNet test (${o.testRule})`,
    });
    const seconds = state.history.reduce((a, h) => a + Number(h.seconds ?? 0), 0);
    return {
      acc: accuracyOf(preds, data.test, testIdx),
      curve: state.history.map((h) => ({
        epoch: Number(h.epoch),
        step: Number(h.step),
        val_acc: Number(h.curve_val_acc ?? NaN),
        train_loss: Number(h.train_loss),
        train_acc: Number(h.train_acc ?? NaN),
      })),
      path: "tfjs",
      cacheBytes: 0,
      stepsPerSecond: state.globalStep / Math.max(seconds, 1e-9),
    };
  }
}
