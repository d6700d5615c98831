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
import { Rng } from "../util/rng.ts";
import { Progress } from "../util/progress.ts";
import type { Featurizer } from "./features.ts";
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
  /** test images used for the per-epoch learning curve (0: none) */
  curveTestImages: number;
  checkpointEvery: number;
  /** checkpoint and metrics file prefix in the run folder */
  name: string;
  quiet?: boolean;
}

/** The test rules. */
export type TestRule = "sum" | "true-label" | "random-label";

/** A 32-bit hash of integers (FNV-1a over their 32-bit words), for derived seeds. */
function mix(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193);
    h = Math.imul(h ^ Math.floor(x / 4294967296), 0x01000193);
  }
  return h >>> 0;
}

/**
 * One pass over `ds` with random labels and training views: per-coordinate statistics of the
 * sparsified gradients (for the normalisation).
 */
export async function gradientStatistics(
  f: Featurizer,
  ds: ImageDataset,
  o: { seed: number; chunk: number; policy: AugmentPolicy; crop: number; quiet?: boolean },
) {
  const stats = new RunningStats(f.layout.size);
  const bar = new Progress("gradient statistics", ds.n, { unit: "ex", quiet: o.quiet });
  for (let s = 0; s < ds.n; s += o.chunk) {
    const rng = new Rng(mix(o.seed, 0x5747, s));
    const idx = Array.from({ length: Math.min(o.chunk, ds.n - s) }, (_, i) => s + i);
    const x = trainView(ds, idx, rng, o);
    const labels = idx.map(() => rng.int(ds.numClasses));
    stats.update(await f.rawRows(x, labels));
    x.dispose();
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
      preds = tf.tidy(() => {
        const feats = tf.tensor2d(rows, [part.length * classes, f.layout.size]);
        return sumRule(net.apply(feats, { training: false }), part.length, classes);
      });
    } else {
      const labels = o.rule === "true-label"
        ? part.map((i) => ds.labels[i])
        : part.map(() => rng.int(ds.numClasses));
      const rows = await f.rows(x, labels);
      preds = tf.tidy(() =>
        net.apply(tf.tensor2d(rows, [part.length, f.layout.size]), { training: false }).argMax(-1)
          .dataSync() as Int32Array
      );
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
export function sumRule(logits: tf.Tensor2D, n: number, k: number): Int32Array {
  return tf.tidy(() => logits.reshape([n, k, -1]).sum(1).argMax(-1).dataSync() as Int32Array);
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
    throw new RangeError(`${ds.n} GradNet training images are fewer than one batch of ${o.batch}`);
  }
  const perChunk = Math.max(1, Math.floor(o.chunk / o.batch));
  const optimizer = makeOptimizer(net.params, o.optimizer);
  const curveIdx = Array.from({ length: Math.min(o.curveTestImages, test.n) }, (_, i) => i);
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
      return { curve_test_acc: accuracyOf(preds, test, curveIdx) };
    },
  });
  optimizer.dispose();
  return state;
}
