/**
 * Training and testing GradNet on one base snapshot (spec §2).
 *
 * - Training: every visit of an example of the GradNet half draws a fresh random label y, the
 *   feature is the processed gradient g(x, y) of an augmented view, the target is the true label.
 *   Features are made in chunks of examples whose randomness depends only on (seed, epoch, chunk),
 *   so a resumed run rebuilds exactly the chunk it stopped in.
 * - Test rule: the features of all K labels of a test image go through GradNet; the K logit
 *   vectors are summed and the argmax is the prediction. Ablations: the true label's feature only
 *   (it leaks the label: an upper bound, not the method) or one random label.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ImageDataset } from "../data/dataset.ts";
import type { RunDir } from "../run/run_dir.ts";
import { epochOrder, softmaxClassification, type TrainState } from "../train/fit.ts";
import { makeOptimizer, type OptimizerConfig } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { RunningStats } from "../gradients/normalize.ts";
import { GradNet } from "../models/gradnet.ts";
import { mix, Rng } from "../util/rng.ts";
import { Progress } from "../util/progress.ts";
import type { Featurizer } from "./features.ts";
import { FeatureCache, featureChunk, type RowBatch, type SparseRow } from "./cache.ts";
import type { FeatureRows, FileFeatureCache } from "./file_cache.ts";
import { SparseGradNet } from "./sparse.ts";
import { InterruptedError, interruptRequested } from "../util/interrupt.ts";
import { UserError } from "../util/errors.ts";
import { type AugmentPolicy, testView, trainView } from "./preprocess.ts";

/** How GradNet is trained. */
export interface GradNetTrainOptions {
  seed: number;
  epochs: number;
  batch: number;
  lr: number;
  optimizer: OptimizerConfig;
  /** examples per feature chunk */
  chunk: number;
  policy: AugmentPolicy;
  crop: number;
  /** validation images used for the per-epoch learning curve (0: none) */
  curveImages: number;
  checkpointEvery: number;
  /** checkpoint and metrics file prefix in the run folder */
  name: string;
  quiet?: boolean;
}

/** The test rules. */
export type TestRule = "sum" | "true-label" | "random-label";

/**
 * One pass over `ds` with training views: per-coordinate statistics of the sparsified gradients
 * of every label (the rows training draws its random labels from), for the normalisation.
 */
export async function gradientStatistics(
  f: Featurizer,
  ds: ImageDataset,
  o: { seed: number; chunk: number; policy: AugmentPolicy; crop: number; quiet?: boolean },
) {
  const stats = new RunningStats(f.layout.size);
  const bar = new Progress("gradient statistics", ds.n, { unit: "ex", quiet: o.quiet });
  const chunk = featureChunk(o.chunk, f.layout.size, ds.numClasses);
  for (let s = 0; s < ds.n; s += chunk) {
    const rng = new Rng(mix(o.seed, 0x5747, s));
    const idx = Array.from({ length: Math.min(chunk, ds.n - s) }, (_, i) => s + i);
    const x = trainView(ds, idx, rng, o);
    const { rows } = await f.allLabelRows(x, ds.numClasses, { normalize: false });
    x.dispose();
    FeatureCache.statsOf(rows, f.layout.size, stats);
    bar.tick(idx.length);
  }
  bar.finish();
  return stats.result();
}

/** Predictions of GradNet on test images under a test rule. */
export async function gradNetPredict(
  net: GradNet,
  f: Featurizer,
  ds: ImageDataset,
  idx: number[],
  o: {
    rule: TestRule;
    policy: AugmentPolicy;
    crop: number;
    seed: number;
    batch?: number;
    quiet?: boolean;
    label?: string;
  },
): Promise<Int32Array> {
  const out = new Int32Array(idx.length);
  const batch = o.batch ?? 100;
  const rng = new Rng(mix(o.seed, 0x7e57));
  const bar = new Progress(o.label ?? "GradNet test", idx.length, { unit: "img", quiet: o.quiet });
  for (let s = 0; s < idx.length; s += batch) {
    const part = idx.slice(s, s + batch);
    const x = testView(ds, part, o);
    let preds: Int32Array;
    if (o.rule === "sum") {
      const { rows, classes } = await f.allLabelRows(x);
      const logits = tf.tidy(() =>
        net.apply(tf.tensor2d(rows, [part.length * classes, f.layout.size]), { training: false })
      );
      preds = await sumRule(logits, part.length, classes);
      logits.dispose();
    } else {
      const labels = o.rule === "true-label"
        ? part.map((i) => ds.labels[i])
        : part.map(() => rng.int(ds.numClasses));
      const rows = await f.rows(x, labels);
      const arg = tf.tidy(() =>
        net.apply(tf.tensor2d(rows, [part.length, f.layout.size]), { training: false }).argMax(-1)
      );
      preds = (await arg.data()) as Int32Array;
      arg.dispose();
    }
    x.dispose();
    out.set(preds, s);
    bar.tick(part.length);
  }
  bar.finish();
  return out;
}

/**
 * The test rule: logits [n·K, C] of the K label-gradients of n images (label-major per image)
 * are summed over the K labels; the prediction is the argmax of the sum.
 */
export async function sumRule(logits: tf.Tensor2D, n: number, k: number): Promise<Int32Array> {
  const arg = tf.tidy(() => logits.reshape([n, k, -1]).sum(1).argMax(-1));
  const out = (await arg.data()) as Int32Array;
  arg.dispose();
  return out;
}

/** Fraction of predictions equal to the labels of `idx`. */
export function accuracyOf(preds: Int32Array, ds: ImageDataset, idx: number[]): number {
  let c = 0;
  idx.forEach((i, j) => (c += preds[j] === ds.labels[i] ? 1 : 0));
  return c / idx.length;
}

/** Trains (or resumes) a GradNet on features of `ds`. */
export async function trainGradNet(
  run: RunDir,
  net: GradNet,
  f: Featurizer,
  ds: ImageDataset,
  test: ImageDataset,
  o: GradNetTrainOptions,
): Promise<TrainState> {
  const stepsPerEpoch = Math.floor(ds.n / o.batch);
  if (stepsPerEpoch < 1) {
    throw new UserError(`--batch=${o.batch}: more than the ${ds.n} GradNet training images`);
  }
  const perChunk = Math.max(1, Math.floor(o.chunk / o.batch));
  const optimizer = makeOptimizer(net.params, o.optimizer);
  const curveIdx = Array.from({ length: Math.min(o.curveImages, test.n) }, (_, i) => i);
  let cache: { key: string; rows: Float32Array; labels: Int32Array } | null = null;
  // Features of chunk c of an epoch: examples at positions [c·perChunk·batch, ...) of the order.
  const chunkFeatures = async (epoch: number, c: number) => {
    const key = `${epoch}/${c}`;
    if (cache?.key === key) return cache;
    const order = epochOrder(o.seed + 1, epoch, ds.n);
    const start = c * perChunk * o.batch;
    const end = Math.min(start + perChunk * o.batch, stepsPerEpoch * o.batch);
    const idx = Array.from(order.subarray(start, end));
    const rng = new Rng(mix(o.seed, epoch, c));
    const x = trainView(ds, idx, rng, o);
    const randomLabels = idx.map(() => rng.int(ds.numClasses));
    const rows = await f.rows(x, randomLabels);
    x.dispose();
    cache = { key, rows, labels: Int32Array.from(idx, (i) => ds.labels[i]) };
    return cache;
  };
  type Batch = { x: tf.Tensor2D; y: tf.Tensor2D; size: number; dropoutSeed: number };
  const state = await trainInRun<Batch>({
    run,
    name: `${o.name}-checkpoint.bin`,
    metricsFile: `${o.name}-metrics.csv`,
    label: o.name,
    params: net.params,
    variables: net.variables(),
    optimizer,
    baseLr: o.lr,
    schedule: { kind: "constant" },
    epochs: o.epochs,
    stepsPerEpoch,
    rng: new Rng(o.seed),
    checkpointEvery: o.checkpointEvery,
    quiet: o.quiet,
    async makeBatch(epoch, step) {
      const c = Math.floor(step / perChunk);
      const feats = await chunkFeatures(epoch, c);
      const j = step - c * perChunk;
      const rows = feats.rows.subarray(
        j * o.batch * f.layout.size,
        (j + 1) * o.batch * f.layout.size,
      );
      const labels = feats.labels.subarray(j * o.batch, (j + 1) * o.batch);
      return {
        x: tf.tensor2d(rows, [labels.length, f.layout.size]),
        y: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), ds.numClasses) as tf.Tensor2D),
        size: labels.length,
        dropoutSeed: mix(o.seed, 0xd809, epoch, step),
      };
    },
    lossFn(b) {
      return softmaxClassification(
        net.apply(b.x, { training: true, dropoutSeed: b.dropoutSeed }),
        b.y,
      );
    },
    async evaluate(): Promise<Record<string, number>> {
      if (!curveIdx.length) return {};
      const preds = await gradNetPredict(net, f, test, curveIdx, {
        rule: "sum",
        policy: o.policy,
        crop: o.crop,
        seed: o.seed,
        quiet: true,
      });
      return { curve_val_acc: accuracyOf(preds, test, curveIdx) };
    },
  });
  optimizer.dispose();
  return state;
}

/** Labelled cached features: a feature cache and the true label of each of its examples. */
export interface CachedSet {
  /** features of every example and label (in memory or in a file) */
  cache: FeatureRows;
  /** true label of each example */
  labels: ArrayLike<number>;
}

/**
 * Where GradNet's training rows come from. Position q of an epoch visits example order[q] with
 * label labels[q]; `rows` returns the rows of positions [from, to).
 */
export interface TrainRows {
  /** examples */
  n: number;
  /** classes */
  classes: number;
  /** true labels */
  targets: ArrayLike<number>;
  /** The feature rows of positions [from, to) of an epoch visiting `order` with `labels`. */
  rows(
    epoch: number,
    order: Int32Array,
    labels: Int32Array,
    from: number,
    to: number,
  ): Promise<SparseRow[] | RowBatch>;
}

/**
 * Training rows from a feature file, read one batch ahead: while a step runs on batch s, the
 * rows of batch s + 1 are read (on a thread of their own with the native library) into the other
 * of two buffers. A batch returned is valid until the next call.
 *
 * @example
 * ```ts
 * import { prefetchedRows } from "./train.ts";
 * import { FileFeatureCache } from "./file_cache.ts";
 * // three examples × two labels of 4 coordinates (example-major, label-minor)
 * const dense = Float32Array.from({ length: 24 }, (_, j) => (j % 3 === 0 ? j : 0));
 * const file = FileFeatureCache.fromDense(dense, 3, 2, 4, await Deno.makeTempFile());
 * const rows = prefetchedRows(file, [0, 1, 1]);
 * const order = Int32Array.of(2, 0, 1), labels = Int32Array.of(1, 0, 1);
 * const batch = await rows.rows(0, order, labels, 0, 1); // example 2, label 1: row 5
 * if (Array.isArray(batch) || batch.val[0] !== 21) throw new Error("wrong row");
 * await rows.rows(0, order, labels, 1, 2); // read ahead during the first call
 * file.close();
 * ```
 */
export function prefetchedRows(cache: FileFeatureCache, targets: ArrayLike<number>): TrainRows {
  const K = cache.classes;
  const buffers: (RowBatch | null)[] = [null, null];
  let flip = 0;
  let ahead: { key: string; slot: number; read: Promise<RowBatch> } | null = null;
  const read = (order: Int32Array, labels: Int32Array, from: number, to: number, slot: number) => {
    const rows = Int32Array.from(
      { length: to - from },
      (_, q) => order[from + q] * K + labels[from + q],
    );
    const p = cache.readRows(rows, buffers[slot]).then((b) => (buffers[slot] = b));
    p.catch(() => {}); // awaited later, or dropped on an interrupt: never an unhandled rejection
    return p;
  };
  return {
    n: cache.n,
    classes: K,
    targets,
    async rows(epoch, order, labels, from, to) {
      const key = `${epoch}/${from}/${to}`;
      let batch: RowBatch;
      if (ahead?.key === key) {
        batch = await ahead.read;
        flip = ahead.slot;
      } else {
        // a read ahead of another batch (after a resume) must end before its buffer is reused
        if (ahead) await ahead.read.catch(() => {});
        flip = 1 - flip;
        batch = await read(order, labels, from, to, flip);
      }
      ahead = null;
      const next = to + (to - from);
      if (next <= labels.length) {
        const slot = 1 - flip;
        ahead = { key: `${epoch}/${to}/${next}`, slot, read: read(order, labels, to, next, slot) };
      }
      return batch;
    },
  };
}

/** Training rows from a feature cache. */
export function cachedRows(set: CachedSet): TrainRows {
  return {
    n: set.cache.n,
    classes: set.cache.classes,
    targets: set.labels,
    rows: (_epoch, order, labels, from, to) => {
      const out: SparseRow[] = [];
      for (let q = from; q < to; q++) out.push(set.cache.row(order[q], labels[q]));
      return Promise.resolve(out);
    },
  };
}

/**
 * Training rows computed per visit from freshly augmented views (CIFAR with augmentation): the
 * positions of an epoch are cut into fixed blocks of `chunk`, each with its own random stream
 * (seed, epoch, block), so a resumed run redraws exactly the views it stopped in.
 */
export function augmentedRows(
  f: Featurizer,
  ds: ImageDataset,
  o: { seed: number; chunk: number; policy: AugmentPolicy; crop: number },
): TrainRows {
  let held: { key: string; rows: SparseRow[] } | null = null;
  const block = async (epoch: number, order: Int32Array, labels: Int32Array, c: number) => {
    const key = `${epoch}/${c}`;
    if (held?.key === key) return held.rows;
    const from = c * o.chunk, to = Math.min(from + o.chunk, labels.length);
    const idx = Array.from(order.subarray(from, to));
    const x = trainView(ds, idx, new Rng(mix(o.seed, 0xa06, epoch, c)), o);
    const raw = await f.rawRows(x, labels.subarray(from, to));
    x.dispose();
    const cache = FeatureCache.fromDense(raw, idx.length, 1, f.layout.size, f);
    held = { key, rows: idx.map((_, j) => cache.row(j, 0)) };
    return held.rows;
  };
  return {
    n: ds.n,
    classes: ds.numClasses,
    targets: ds.labels,
    async rows(epoch, order, labels, from, to) {
      const out: SparseRow[] = [];
      for (let q = from; q < to; q++) {
        const c = Math.floor(q / o.chunk);
        out.push((await block(epoch, order, labels, c))[q - c * o.chunk]);
      }
      return out;
    },
  };
}

/** Accuracy of the sum test rule on cached features (every label row of each example). */
export function sumRuleAccuracy(net: SparseGradNet, set: CachedSet, count = set.cache.n): number {
  const n = Math.min(count, set.cache.n);
  let correct = 0;
  const rows = Array.from({ length: set.cache.classes }, (_, k) => set.cache.row(0, k));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < rows.length; k++) rows[k] = set.cache.row(i, k);
    if (net.predictSum(rows) === set.labels[i]) correct++;
  }
  return correct / n;
}

/** How {@link trainGradNetSparse} trains. */
export interface CachedTrainOptions {
  /** seed of initialisation and batch order */
  seed: number;
  /** epochs */
  epochs: number;
  /** examples per step (each with all its label rows) */
  batch: number;
  /** learning rate (plain SGD) */
  lr: number;
  /** epochs (1-based) after which the validation curve is measured (default: every epoch) */
  evalAt?: (epoch: number) => boolean;
  /** checkpoint at an epoch end when this many seconds passed since the last one */
  checkpointSeconds?: number;
  /** checkpoint and metrics file prefix in the run folder */
  name: string;
  /** no progress line */
  quiet?: boolean;
}

interface CachedCheckpoint {
  epoch: number;
  /** steps done in `epoch` (0-based epoch index) */
  step: number;
  loss: number;
  correct: number;
  seconds: number;
  history: Record<string, number>[];
}

/**
 * Trains (or resumes) a GradNet on sparse feature rows with plain SGD — the paper's recipe: each
 * visit of an example takes the feature of a fresh random label (drawn per epoch from the seed),
 * the target is the true label. Records per epoch the training loss and accuracy (single
 * random-label rows) and, when `val` is given, the sum-rule accuracy on it. Checkpoints go to
 * the run folder; an interrupt saves the exact step. The TF.js `net` receives the final weights.
 */
export async function trainGradNetSparse(
  run: RunDir,
  net: GradNet,
  train: TrainRows,
  val: CachedSet | null,
  o: CachedTrainOptions,
): Promise<{ history: Record<string, number>[] }> {
  const steps = Math.floor(train.n / o.batch);
  if (steps < 1) {
    throw new UserError(`--batch=${o.batch}: more than the ${train.n} GradNet training images`);
  }
  const sn = await SparseGradNet.fromGradNet(net);
  const file = `${o.name}-checkpoint.bin`;
  let at: CachedCheckpoint = { epoch: 0, step: 0, loss: 0, correct: 0, seconds: 0, history: [] };
  const saved = await run.loadCheckpoint<CachedCheckpoint>(file);
  if (saved) {
    sn.loadArrays(saved.tensors);
    at = saved.meta;
    if (!o.quiet) console.error(`resuming ${o.name} at epoch ${at.epoch + 1}, step ${at.step}`);
  }
  const save = () => run.saveCheckpoint(at, sn.toArrays(), file);
  const K = train.classes;
  const targets = new Int32Array(o.batch);
  const bar = new Progress(o.name, (o.epochs - at.epoch) * steps - at.step, {
    unit: "step",
    quiet: o.quiet,
  });
  let lastSave = performance.now(), lastYield = lastSave;
  while (at.epoch < o.epochs) {
    const order = epochOrder(o.seed + 1, at.epoch, train.n);
    const rng = new Rng(mix(o.seed, 0x1abe1, at.epoch));
    const randomLabels = Int32Array.from({ length: steps * o.batch }, () => rng.int(K));
    let t = performance.now();
    for (; at.step < steps; at.step++) {
      const from = at.step * o.batch;
      const rows = await train.rows(at.epoch, order, randomLabels, from, from + o.batch);
      for (let e = 0; e < o.batch; e++) targets[e] = train.targets[order[from + e]];
      const r = sn.step(rows, targets, o.lr);
      if (!Number.isFinite(r.loss)) {
        throw new Error(
          `GradNet loss diverged at epoch ${at.epoch + 1}, step ${at.step}: ${r.loss}`,
        );
      }
      at.loss += r.loss;
      at.correct += r.correct;
      const seen = (at.step + 1) * o.batch;
      bar.tick(1, `epoch ${at.epoch + 1}/${o.epochs} loss ${(at.loss / seen).toFixed(4)}`);
      if (performance.now() - lastYield > 200) {
        // rows from memory resolve at once: let the event loop see a Ctrl-C (it took 35 s)
        await new Promise((resolve) => setTimeout(resolve, 0));
        lastYield = performance.now();
      }
      if (interruptRequested()) {
        at.step++;
        at.seconds += (performance.now() - t) / 1000;
        await save();
        throw new InterruptedError(`interrupted in ${o.name} at epoch ${at.epoch + 1}`);
      }
    }
    at.seconds += (performance.now() - t) / 1000;
    const record: Record<string, number> = {
      epoch: at.epoch + 1,
      step: (at.epoch + 1) * steps,
      lr: o.lr,
      train_loss: at.loss / (steps * o.batch),
      train_acc: at.correct / (steps * o.batch),
      seconds: at.seconds,
      steps_per_s: steps / at.seconds,
    };
    t = performance.now();
    if (val && (o.evalAt?.(at.epoch + 1) ?? true)) record.val_acc = sumRuleAccuracy(sn, val);
    at.history.push(record);
    at = { epoch: at.epoch + 1, step: 0, loss: 0, correct: 0, seconds: 0, history: at.history };
    const last = at.epoch === o.epochs;
    if (last || performance.now() - lastSave > 1000 * (o.checkpointSeconds ?? 30)) {
      await save();
      await run.writeMetrics(at.history, `${o.name}-metrics.csv`);
      lastSave = performance.now();
    }
  }
  bar.finish();
  sn.writeTo(net);
  return { history: at.history };
}
