/**
 * SuperNet's two phases (spec §2 and §4).
 *
 * Training: for each step a random training task k, z = one-hot(k), a batch drawn with
 * replacement from that task's training images; C's sigmoid cross-entropy on the generated
 * weights trains G (RMSProp, TF1 form). Resumable in a run folder.
 *
 * Adaptation to a held-out task, equal step budgets, one arm at a time:
 * - `z-only`: G frozen, only z trains (the method; G's checksum is compared before and after);
 * - `z+G`: z and G train (what the original code probably did); G is restored afterwards;
 * - `scratch`: the same classifier with ordinary weights trained from Glorot init;
 * - `random-z`: the initial random z, no training;
 * - `twin-z`: z = one-hot of the task's flipped twin, no training (≈ inverted predictions).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { imageBatch, type ImageDataset } from "../data/dataset.ts";
import type { RunDir } from "../run/run_dir.ts";
import { type EpochRecord, fit } from "../train/fit.ts";
import { RmsProp } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { Rng } from "../util/rng.ts";
import {
  binaryLoss,
  classifierLogits,
  type Generator,
  initClassifierWeights,
  type TensorSpec,
} from "./networks.ts";
import { type Task, taskLabel } from "./tasks.ts";

/** How pixels reach the classifier: 0–1 (default, a documented deviation) or raw 0–255. */
export type Scaling = "unit" | "raw";

/** Train and test images. */
export interface SuperNetData {
  train: ImageDataset;
  test: ImageDataset;
  scaling: Scaling;
}

/** Images `idx` of `ds` with their 0/1 labels in `task`. */
export function taskBatch(
  ds: ImageDataset,
  task: Task,
  idx: ArrayLike<number>,
  scaling: Scaling,
): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return {
    x: imageBatch(ds, idx, scaling === "unit" ? 1 / 255 : 1),
    y: tf.tensor1d(Array.from(idx, (i) => taskLabel(task, ds, i))),
  };
}

/** Test accuracy and loss of the classifier on weights `w` over (up to `limit` of) a task's test images. */
export async function taskTestMetrics(
  w: () => tf.Tensor[],
  task: Task,
  data: SuperNetData,
  limit = 0,
  batch = 500,
): Promise<{ acc: number; loss: number }> {
  const idx = limit > 0 ? task.test.subarray(0, limit) : task.test;
  let correct = 0, loss = 0;
  for (let s = 0; s < idx.length; s += batch) {
    const part = idx.subarray(s, s + batch);
    const r = tf.tidy(() => {
      const { x, y } = taskBatch(data.test, task, part, data.scaling);
      const logits = classifierLogits(x, w());
      const hit = tf.equal(tf.greater(logits, 0).toFloat(), y).sum();
      return tf.stack([hit.toFloat(), binaryLoss(logits, y).mul(part.length)]);
    });
    const [h, l] = await r.data();
    r.dispose();
    correct += h;
    loss += l;
  }
  return { acc: correct / idx.length, loss: loss / idx.length };
}

/** One-hot task vector. */
export function oneHotZ(k: number, zDim: number): tf.Tensor1D {
  if (k < 0 || k >= zDim) throw new RangeError(`task index ${k} outside z's ${zDim} dimensions`);
  return tf.tidy(() => tf.oneHot(tf.tensor1d([k], "int32"), zDim).reshape([zDim]) as tf.Tensor1D);
}

/** Options of {@link trainGenerator}. */
export interface GeneratorTrainOptions {
  steps: number;
  evalEvery: number;
  batch: number;
  lr: number;
  seed: number;
  checkpointEvery: number;
  /** test images per task in the periodic evaluation (0: all) */
  evalImages: number;
  /** prefix of the checkpoint and metrics files */
  tag: string;
  quiet?: boolean;
}

/**
 * Trains G on `tasks` (task j gets z = one-hot(j)); returns the per-evaluation history (mean test
 * accuracy over the training tasks).
 */
export async function trainGenerator(
  run: RunDir,
  G: Generator,
  tasks: Task[],
  data: SuperNetData,
  o: GeneratorTrainOptions,
): Promise<EpochRecord[]> {
  const segments = Math.ceil(o.steps / o.evalEvery);
  const zs = tasks.map((_, j) => oneHotZ(j, G.zDim));
  const state = await trainInRun({
    run,
    name: `${o.tag}-checkpoint.bin`,
    metricsFile: `${o.tag}-metrics.csv`,
    label: o.tag,
    quiet: o.quiet,
    params: G.variables,
    optimizer: new RmsProp(G.variables, { rho: 0.9, epsilon: 1e-10, initialMeanSquare: 1 }),
    baseLr: o.lr,
    schedule: { kind: "constant" },
    epochs: segments,
    stepsPerEpoch: o.evalEvery,
    rng: new Rng(o.seed),
    checkpointEvery: o.checkpointEvery,
    makeBatch(_segment, _step, rng) {
      const k = rng.int(tasks.length), t = tasks[k];
      const idx = Array.from({ length: o.batch }, () => t.train[rng.int(t.train.length)]);
      return { ...taskBatch(data.train, t, idx, data.scaling), k, size: o.batch };
    },
    lossFn(b) {
      const logits = classifierLogits(b.x, G.generate(zs[b.k]));
      return {
        loss: binaryLoss(logits, b.y),
        correct: tf.equal(tf.greater(logits, 0).toFloat(), b.y).sum() as tf.Scalar,
      };
    },
    async evaluate() {
      let acc = 0;
      for (let j = 0; j < tasks.length; j++) {
        acc += (await taskTestMetrics(() => G.generate(zs[j]), tasks[j], data, o.evalImages)).acc;
      }
      return { test_acc: acc / tasks.length };
    },
  });
  tf.dispose(zs);
  return state.history;
}

/** The adaptation arms. */
export const ARMS = ["z-only", "z+G", "scratch", "random-z", "twin-z"] as const;
export type Arm = typeof ARMS[number];

/** Options of {@link adaptArm}. */
export interface AdaptOptions {
  steps: number;
  evalPoints: number;
  batch: number;
  lr: number;
  /** learning rate of the scratch arm (default: `lr`) */
  scratchLr?: number;
  seed: number;
  /** z index of the held-out task's flipped twin among the trained tasks, or −1 */
  twinIndex: number;
  quiet?: boolean;
}

/** What an arm reports. */
export interface ArmOutcome {
  arm: Arm;
  testAcc: number;
  testLoss: number;
  curve: { step: number; test_acc: number; test_loss: number }[];
  seconds: number;
  /** G's checksum before and after (z-only must leave it unchanged) */
  generatorBefore: string;
  generatorAfter: string;
}

/** Adapts to `task` with one arm; G is left as it was found (restored after `z+G`). */
export async function adaptArm(
  arm: Arm,
  G: Generator,
  spec: TensorSpec[],
  task: Task,
  data: SuperNetData,
  o: AdaptOptions,
): Promise<ArmOutcome> {
  const t0 = performance.now();
  const before = await G.checksum();
  const rng = new Rng(o.seed * 7 + 3);
  // the original: z = Dense(1 → 100)(1) = w + b with w Glorot-uniform (±√(6/101)), b = 0
  const lim = Math.sqrt(6 / (1 + G.zDim));
  const z0 = tf.tensor1d(Float32Array.from({ length: G.zDim }, () => rng.uniform(-lim, lim)));
  const z = tf.variable(z0, true);
  z0.dispose(); // the variable holds its own reference to the data
  const snapshot = arm === "z+G" ? await G.snapshot() : null;
  const own = arm === "scratch" ? initClassifierWeights(spec, o.seed + 11) : null;
  const twinZ = arm === "twin-z" && o.twinIndex >= 0 ? oneHotZ(o.twinIndex, G.zDim) : null;
  const weights = () =>
    own ? own as tf.Tensor[] : G.generate(twinZ ?? (z as unknown as tf.Tensor1D));
  const curve: ArmOutcome["curve"] = [];
  const measure = async (step: number) => {
    const m = await taskTestMetrics(weights, task, data);
    curve.push({ step, test_acc: m.acc, test_loss: m.loss });
    return m;
  };
  if (arm === "twin-z" && !twinZ) throw new RangeError(`${task.name}: no trained twin for twin-z`);
  await measure(0);
  const params = arm === "z-only" ? [z] : arm === "z+G" ? [z, ...G.variables] : own;
  if (params && o.steps > 0) {
    const perEval = Math.max(1, Math.floor(o.steps / o.evalPoints));
    const epochs = Math.ceil(o.steps / perEval);
    const optimizer = new RmsProp(params, { rho: 0.9, epsilon: 1e-10, initialMeanSquare: 1 });
    const bRng = new Rng(o.seed * 13 + 5);
    await fit({
      params,
      optimizer,
      baseLr: arm === "scratch" ? o.scratchLr ?? o.lr : o.lr,
      schedule: { kind: "constant" },
      epochs,
      stepsPerEpoch: perEval,
      rng: bRng,
      label: `${task.name} ${arm}`,
      quiet: o.quiet,
      makeBatch(_e, _s, r) {
        const idx = Array.from({ length: o.batch }, () => task.train[r.int(task.train.length)]);
        return { ...taskBatch(data.train, task, idx, data.scaling), size: o.batch };
      },
      lossFn(b) {
        const logits = classifierLogits(b.x, weights());
        return {
          loss: binaryLoss(logits, b.y),
          correct: tf.equal(tf.greater(logits, 0).toFloat(), b.y).sum() as tf.Scalar,
        };
      },
      async evaluate(epoch) {
        const m = await measure((epoch + 1) * perEval);
        return { test_acc: m.acc, test_loss: m.loss };
      },
    });
    optimizer.dispose();
  }
  const last = curve.at(-1)!;
  const after = await G.checksum();
  if (snapshot) G.restore(snapshot);
  tf.dispose([z, ...(own ?? []), ...(twinZ ? [twinZ] : [])]);
  return {
    arm,
    testAcc: last.test_acc,
    testLoss: last.test_loss,
    curve,
    seconds: (performance.now() - t0) / 1000,
    generatorBefore: before,
    generatorAfter: after,
  };
}
