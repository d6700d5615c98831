/**
 * One arm of the GUNN experiment: a GUNN (gradual) or SUNN (simultaneous) network trained with
 * the authors' recipe — SGD with Nesterov momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at
 * 50 % and 75 % of the run — inside a run folder, resumable, with test accuracy after each epoch.
 *
 * Both arms of a seed start from the same weights (the builders draw parameters in the same order)
 * and see the same batches and augmentations (both come from the seed alone).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LayersModel, Tensor, Variable } from "../util/tf_types.ts";
import { UserError } from "../util/errors.ts";
import type { ImageDataset } from "../data/dataset.ts";
import type { RunDir } from "../run/run_dir.ts";
import { epochOrder, type EpochRecord, oneHotLabels, softmaxClassification } from "../train/fit.ts";
import { Sgd } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { Rng } from "../util/rng.ts";
import { gunnTestBatch, gunnTrainBatch, type GunnView } from "./data.ts";

/** Recipe of one arm. */
export interface GunnTrainOptions {
  /** seed of initialisation, batch order and augmentation */
  seed: number;
  /** epochs */
  epochs: number;
  /** batch size */
  batch: number;
  /** initial learning rate (÷10 at 50 % and 75 % of the epochs) */
  lr: number;
  /** Nesterov momentum */
  momentum: number;
  /** weight decay (added to the gradient) */
  weightDecay: number;
  /** normalisation and augmentation of the images */
  view: GunnView;
  /** checkpoint every this many steps */
  checkpointEvery: number;
  /** prefix of the checkpoint and metrics files in the run folder */
  tag: string;
  /** name in the progress line */
  label: string;
  /** no progress line */
  quiet?: boolean;
}

/** What an arm ends with. */
export interface ArmResult {
  /** accuracy on the test images */
  testAcc: number;
  /** one record per epoch */
  history: EpochRecord[];
  /** training images per second (optimizer steps only, no evaluation) */
  imagesPerSecond: number;
  /** seconds spent in optimizer steps */
  trainSeconds: number;
}

/** Top-1 accuracy of `model` (inference mode: running batch-norm statistics). */
export async function testAccuracy(
  model: LayersModel,
  ds: ImageDataset,
  view: GunnView,
  batch = 250,
): Promise<number> {
  let correct = 0;
  for (let s = 0; s < ds.n; s += batch) {
    const idx = Array.from({ length: Math.min(batch, ds.n - s) }, (_, i) => s + i);
    const c = tf.tidy(() => {
      const logits = model.apply(gunnTestBatch(ds, idx, view), { training: false }) as Tensor;
      const labels = tf.tensor1d(idx.map((i) => ds.labels[i]), "int32");
      return logits.argMax(-1).equal(labels).sum();
    });
    correct += (await c.data())[0];
    c.dispose();
  }
  return correct / ds.n;
}

/** Trains `model` on `train` (or resumes it from the run folder); reports test accuracy per epoch. */
export async function trainGunnArm(
  run: RunDir,
  model: LayersModel,
  train: ImageDataset,
  test: ImageDataset,
  o: GunnTrainOptions,
): Promise<ArmResult> {
  const params = model.trainableWeights.map((w) => (w as unknown as { val: Variable }).val);
  const stepsPerEpoch = Math.floor(train.n / o.batch);
  if (stepsPerEpoch < 1) {
    throw new UserError(`--batch=${o.batch}: more than the ${train.n} training images`);
  }
  const state = await trainInRun({
    run,
    name: `${o.tag}-checkpoint.bin`,
    metricsFile: `${o.tag}-metrics.csv`,
    label: o.label,
    quiet: o.quiet,
    params,
    // batch-norm running statistics too: a resumed run must evaluate like an uninterrupted one
    variables: model.weights,
    optimizer: new Sgd(params, {
      momentum: o.momentum,
      nesterov: true,
      weightDecay: o.weightDecay,
    }),
    baseLr: o.lr,
    // the authors' Torch loop: `if epoch >= 0.5·N` with 1-based epochs (150 and 225 of 300)
    schedule: { kind: "multistep", atFractions: [0.5, 0.75], gamma: 0.1, torchEpochs: true },
    epochs: o.epochs,
    stepsPerEpoch,
    rng: new Rng(o.seed),
    checkpointEvery: o.checkpointEvery,
    makeBatch(epoch, step, rng) {
      const idx = epochOrder(o.seed, epoch, train.n).subarray(step * o.batch, (step + 1) * o.batch);
      const x = gunnTrainBatch(train, idx, rng, o.view);
      return { x, y: oneHotLabels(train, idx), size: idx.length };
    },
    lossFn(b) {
      return softmaxClassification(model.apply(b.x, { training: true }) as Tensor, b.y);
    },
    async evaluate() {
      return { test_acc: await testAccuracy(model, test, o.view) };
    },
  });
  const trainSeconds = state.history.reduce((s, r) => s + r.seconds, 0);
  return {
    testAcc: state.history.at(-1)?.test_acc ?? NaN,
    history: state.history,
    imagesPerSecond: (state.history.length * stepsPerEpoch * o.batch) / trainSeconds,
    trainSeconds,
  };
}
