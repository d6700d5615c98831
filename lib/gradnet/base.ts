/**
 * Training the GradNet base network (spec §2) on the first half of the training set — plain SGD,
 * weight decay, batch 64, learning rate halved every 25 epochs — with a ladder of snapshots taken
 * when *validation* accuracy first reaches each target (the test set is never read here). The
 * validation accuracy is measured every `evalEvery` steps during the first epoch, so that low
 * rungs are caught even when one epoch jumps past them, then at about every 10 % more steps.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ImageDataset } from "../data/dataset.ts";
import type { RunDir } from "../run/run_dir.ts";
import { arraysToVariables, variablesToArrays } from "../run/model_io.ts";
import { encodeBundle } from "../run/bundle.ts";
import { UserError } from "../util/errors.ts";
import { epochOrder, oneHotLabels, softmaxClassification, type TrainState } from "../train/fit.ts";
import { ladderCallback, type Rung } from "../train/callbacks.ts";
import { Sgd } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { Rng } from "../util/rng.ts";
import { type AugmentPolicy, testView, trainView } from "./preprocess.ts";

/** Settings of the base network's training. */
export interface BaseTrainOptions {
  seed: number;
  lr: number;
  weightDecay: number;
  batch: number;
  /** halve the learning rate every this many epochs */
  halveEvery: number;
  maxEpochs: number;
  /** validation accuracy is measured every this many steps in the first epoch */
  evalEvery: number;
  targets: number[];
  policy: AugmentPolicy;
  crop: number;
  quiet?: boolean;
}

/** Accuracy of `model` on `ds` (test views), in batches. */
export async function accuracy(
  model: tf.LayersModel,
  ds: ImageDataset,
  idx: ArrayLike<number>,
  o: { policy: AugmentPolicy; crop: number },
  batch = 500,
): Promise<number> {
  let correct = 0;
  for (let s = 0; s < idx.length; s += batch) {
    const part = Array.from(idx).slice(s, s + batch);
    const c = tf.tidy(() => {
      const x = testView(ds, part, o);
      const pred = (model.predict(x) as tf.Tensor).argMax(-1);
      return pred.equal(tf.tensor1d(part.map((i) => ds.labels[i]), "int32")).sum();
    });
    correct += (await c.data())[0];
    c.dispose();
  }
  return correct / idx.length;
}

/**
 * The evaluation segments (0-based) of `segments` in all: every one in the first epoch
 * (`perEpoch` segments), then each about 10 % further on, and the last.
 */
export function evaluationSegments(segments: number, perEpoch: number): Set<number> {
  const out = new Set<number>();
  let s = 0;
  while (s < segments) {
    out.add(s);
    s += s < perEpoch ? 1 : Math.max(1, Math.floor(0.1 * (s + 1)));
  }
  out.add(segments - 1);
  return out;
}

/** The file of rung k's snapshot. */
export function rungFile(k: number): string {
  return `base-rung-${k}.bin`;
}

/** Saves the model's weights as a rung snapshot. */
export async function saveSnapshot(
  run: RunDir,
  k: number,
  model: tf.LayersModel,
  meta: Record<string, unknown>,
): Promise<void> {
  await run.writeBytes(
    rungFile(k),
    encodeBundle(meta, await variablesToArrays(model.weights, "w")),
  );
}

/** Loads a rung snapshot into `model`; returns its metadata. */
export async function loadSnapshot(
  run: RunDir,
  k: number,
  model: tf.LayersModel,
): Promise<Record<string, unknown>> {
  const b = await run.readBundle<Record<string, unknown>>(rungFile(k));
  if (!b) throw new UserError(`${run.file(rungFile(k))}: the rung snapshot is missing`);
  arraysToVariables(model.weights, "w", b.tensors);
  return b.meta;
}

/**
 * Trains (or resumes) the base network until every ladder target is reached or `maxEpochs`
 * pass. Returns the training state; its `extra.ladder` lists the rungs reached.
 */
export async function trainBaseLadder(
  run: RunDir,
  model: tf.LayersModel,
  train: ImageDataset,
  val: ImageDataset,
  o: BaseTrainOptions,
): Promise<{ state: TrainState; rungs: Rung[] }> {
  const params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const optimizer = new Sgd(params, { weightDecay: o.weightDecay });
  const stepsPerEpoch = Math.floor(train.n / o.batch);
  if (stepsPerEpoch < 1) {
    throw new UserError(
      `--base-batch=${o.batch}: more than the ${train.n} base training images`,
    );
  }
  const evalEvery = Math.min(o.evalEvery, stepsPerEpoch);
  const segments = Math.ceil((o.maxEpochs * stepsPerEpoch) / evalEvery);
  const valIdx = Array.from({ length: val.n }, (_, i) => i);
  const evaluated = evaluationSegments(
    segments,
    Math.max(1, Math.round(stepsPerEpoch / evalEvery)),
  );
  const targets = [...o.targets].sort((a, b) => a - b);
  const view = { policy: o.policy, crop: o.crop };
  const state = await trainInRun({
    run,
    name: "base-checkpoint.bin",
    metricsFile: "base-metrics.csv",
    label: "base net",
    params,
    variables: model.weights,
    optimizer,
    baseLr: o.lr,
    // "Epochs" of this loop are evaluation segments of `evalEvery` steps.
    schedule: { kind: "step", everyEpochs: (o.halveEvery * stepsPerEpoch) / evalEvery, gamma: 0.5 },
    epochs: segments,
    stepsPerEpoch: evalEvery,
    rng: new Rng(o.seed),
    checkpointEvery: Math.max(1, evalEvery),
    quiet: o.quiet,
    makeBatch(segment, step, rng) {
      const global = segment * evalEvery + step;
      const epoch = Math.floor(global / stepsPerEpoch), pos = global % stepsPerEpoch;
      const idx = epochOrder(o.seed, epoch, train.n).subarray(pos * o.batch, (pos + 1) * o.batch);
      const x = trainView(train, idx, rng, view);
      return { x, y: oneHotLabels(train, idx), size: idx.length };
    },
    lossFn(b) {
      return softmaxClassification(model.apply(b.x, { training: true }) as tf.Tensor, b.y);
    },
    async evaluate(segment): Promise<Record<string, number>> {
      if (!evaluated.has(segment)) return {};
      return { val_acc: await accuracy(model, val, valIdx, view) };
    },
    callbacks: [
      ladderCallback({
        targets,
        metric: "val_acc",
        stopWhenDone: true,
        optional: true,
        async onReach(target, record) {
          const k = targets.indexOf(target);
          await saveSnapshot(run, k, model, {
            target,
            val_acc: record.val_acc,
            step: record.step,
          });
          if (!o.quiet) {
            console.error(
              `  rung ${k + 1}: validation accuracy ${
                record.val_acc?.toFixed(4)
              } ≥ ${target} at step ${record.step}`,
            );
          }
        },
      }),
    ],
  });
  optimizer.dispose();
  return { state, rungs: (state.extra.ladder ?? []) as Rung[] };
}
