/**
 * The training loop shared by the paper scripts: one optimizer step per batch, learning-rate
 * schedule, progress bar (examples/s, loss, accuracy, ETA), evaluation and callbacks at each
 * epoch end, periodic checkpoints, a divergence guard (NaN/Inf in the loss or the weights stops
 * the run with the step and the value), and exact resume from a saved {@link TrainState}.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor2D, Variable } from "../util/tf_types.ts";
import type { Optimizer } from "./optimizers.ts";
import { lrAt, type Schedule } from "./schedule.ts";
import { Rng, type RngState } from "../util/rng.ts";
import { Progress } from "../util/progress.ts";
import { InterruptedError, interruptRequested } from "../util/interrupt.ts";
import { UserError } from "../util/errors.ts";

/** One epoch's record: training averages plus whatever `evaluate` returned. */
export interface EpochRecord {
  /** epochs completed (1-based) */
  epoch: number;
  /** global step at the end of the epoch */
  step: number;
  /** learning rate of the epoch's last step */
  lr: number;
  /** mean training loss over the epoch */
  train_loss: number;
  /** training accuracy over the epoch (null without a notion of accuracy) */
  train_acc: number | null;
  /** wall time of the epoch's steps */
  seconds: number;
  /** whatever `evaluate` returned */
  [metric: string]: number | null;
}

/** Everything needed to continue a run exactly where it stopped. */
export interface TrainState {
  /** epochs completed */
  epoch: number;
  /** steps done in the current epoch */
  stepInEpoch: number;
  /** optimizer steps since the start */
  globalStep: number;
  /** the batch sampler's state */
  rng: RngState;
  /** every finished epoch's record */
  history: EpochRecord[];
  /** partial-epoch sums */
  running: { loss: number; correct: number; counted: number; examples: number; seconds: number };
  /** callbacks' own state (e.g. which ladder rungs were reached) */
  extra: Record<string, unknown>;
  /** training ended (all epochs, or a callback's stop) */
  finished: boolean;
}

/** A step's result in a loss function. */
export interface LossResult {
  /** the batch's mean loss */
  loss: Scalar;
  /** number of correct predictions in the batch, if it has a notion of accuracy */
  correct?: Scalar;
}

/** Called after each epoch's evaluation; return "stop" to end training early. */
export interface Callback {
  /** Called after each epoch's evaluation. */
  onEpochEnd?(record: EpochRecord, state: TrainState): Promise<"stop" | void> | "stop" | void;
}

/** Training stopped on a non-finite loss or weight. */
export class DivergenceError extends UserError {
  /** The error's name. */
  override name = "DivergenceError";
}

/** What {@link fit} trains and how. */
export interface FitOptions<B extends { size: number }> {
  /** the weights trained */
  params: Variable[];
  /** the optimizer that updates them */
  optimizer: Optimizer;
  /** learning rate before the schedule */
  baseLr: number;
  /** how the learning rate changes */
  schedule: Schedule;
  /** epochs to train */
  epochs: number;
  /** steps per epoch */
  stepsPerEpoch: number;
  /** builds batch `step` of `epoch` (examples, augmentation drawn from `rng`) */
  makeBatch(epoch: number, step: number, rng: Rng): B | Promise<B>;
  /** frees a batch (default: disposes every tensor found in it) */
  disposeBatch?(b: B): void;
  /** the loss of a batch, run under gradient recording */
  lossFn(b: B): LossResult;
  /** rescale the gradients when their global L2 norm exceeds this (default: never) */
  clipNorm?: number;
  /** metrics after each epoch (e.g. test accuracy); must not leak tensors */
  evaluate?(epoch: number): Promise<Record<string, number>>;
  /** draws batches and augmentation (saved in checkpoints) */
  rng: Rng;
  /** run after each epoch */
  callbacks?: Callback[];
  /** checkpoint every `everySteps` steps and at each epoch end */
  checkpoint?: { everySteps: number; save(state: TrainState): Promise<void> };
  /** a state to resume from */
  state?: TrainState;
  /** name in the progress line */
  label?: string;
  /** no progress line */
  quiet?: boolean;
}

/** A fresh state. */
export function initialState(rng: Rng): TrainState {
  return {
    epoch: 0,
    stepInEpoch: 0,
    globalStep: 0,
    rng: rng.getState(),
    history: [],
    running: { loss: 0, correct: 0, counted: 0, examples: 0, seconds: 0 },
    extra: {},
    finished: false,
  };
}

function disposeTensors(b: unknown): void {
  const ts: Tensor[] = [];
  const walk = (v: unknown) => {
    if (v instanceof tf.Tensor) ts.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(b);
  tf.dispose(ts);
}

/** Throws DivergenceError if any parameter holds NaN or ±Inf. */
export async function checkFiniteWeights(params: Variable[], step: number): Promise<void> {
  for (const p of params) {
    const flag = tf.tidy(() => tf.logicalNot(tf.isFinite(p)).any());
    const bad = (await flag.data())[0];
    flag.dispose();
    if (bad) {
      const v = ((await p.data()) as Float32Array).find((x) => !Number.isFinite(x));
      throw new DivergenceError(`weights diverged at step ${step}: ${p.name} holds ${v}`);
    }
  }
}

/**
 * Trains until `epochs` are done, a callback says stop, or an interrupt (which checkpoints first).
 * @returns the final state (with `history`)
 */
export async function fit<B extends { size: number }>(o: FitOptions<B>): Promise<TrainState> {
  const state = o.state ? structuredClone(o.state) : initialState(o.rng);
  o.rng.setState(state.rng);
  const dispose = o.disposeBatch ?? disposeTensors;
  const save = async () => {
    if (!o.checkpoint) return;
    state.rng = o.rng.getState();
    await o.checkpoint.save(state);
  };
  while (state.epoch < o.epochs && !state.finished) {
    const epoch = state.epoch;
    const bar = new Progress(
      `${o.label ?? "train"} epoch ${epoch + 1}/${o.epochs}`,
      o.stepsPerEpoch,
      { unit: "step", quiet: o.quiet },
    );
    if (state.stepInEpoch) bar.tick(state.stepInEpoch);
    let t0 = performance.now();
    for (let step = state.stepInEpoch; step < o.stepsPerEpoch; step++) {
      const lr = lrAt(o.schedule, o.baseLr, epoch + step / o.stepsPerEpoch, o.epochs);
      const b = await o.makeBatch(epoch, step, o.rng);
      let correctT: Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const r = o.lossFn(b);
        if (r.correct) correctT = tf.keep(r.correct);
        return r.loss;
      }, o.params);
      let g = o.params.map((p) => grads[p.name]);
      if (o.clipNorm !== undefined) {
        const clipped = await clipByGlobalNorm(g, o.clipNorm);
        tf.dispose(Object.values(grads).filter((t) => !clipped.includes(t)));
        g = clipped;
        for (const k of Object.keys(grads)) delete grads[k];
        g.forEach((t, i) => (grads[o.params[i].name] = t));
      }
      o.optimizer.apply(g, lr);
      const loss = (await value.data())[0];
      const correct = correctT ? (await correctT.data())[0] : null;
      tf.dispose([value, ...Object.values(grads)]);
      correctT?.dispose();
      dispose(b);
      state.globalStep++;
      state.stepInEpoch = step + 1;
      if (!Number.isFinite(loss)) {
        throw new DivergenceError(
          `loss diverged at step ${state.globalStep} (epoch ${epoch + 1}): ${loss}`,
        );
      }
      const r = state.running;
      r.loss += loss * b.size;
      r.examples += b.size;
      if (correct !== null) {
        r.correct += correct;
        r.counted += b.size;
      }
      const now = performance.now();
      r.seconds += (now - t0) / 1000;
      t0 = now;
      const ex = r.examples / Math.max(r.seconds, 1e-9);
      bar.tick(
        1,
        `loss ${(r.loss / r.examples).toFixed(4)}` +
          (r.counted ? ` acc ${(r.correct / r.counted).toFixed(4)}` : "") +
          ` ${ex.toFixed(0)} ex/s`,
      );
      if (
        o.checkpoint && state.globalStep % o.checkpoint.everySteps === 0 &&
        step + 1 < o.stepsPerEpoch
      ) {
        await save();
      }
      if (interruptRequested()) {
        await save();
        throw new InterruptedError(`interrupted at step ${state.globalStep} (epoch ${epoch + 1})`);
      }
    }
    await checkFiniteWeights(o.params, state.globalStep);
    const r = state.running;
    const metrics = o.evaluate ? await o.evaluate(epoch) : {};
    const record: EpochRecord = {
      epoch: epoch + 1,
      step: state.globalStep,
      // the rate of the epoch's last step (epoch + 1 − ε fell into the next epoch under the
      // Torch per-epoch schedule: GUNN's records showed each drop one epoch early)
      lr: lrAt(o.schedule, o.baseLr, epoch + (o.stepsPerEpoch - 1) / o.stepsPerEpoch, o.epochs),
      train_loss: r.loss / Math.max(r.examples, 1),
      train_acc: r.counted ? r.correct / r.counted : null,
      seconds: r.seconds,
      ...metrics,
    };
    bar.finish(
      Object.entries(record).filter(([k]) => !["epoch", "step", "seconds"].includes(k))
        .map(([k, v]) =>
          `${k} ${
            typeof v === "number"
              ? (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(4))
              : v
          }`
        )
        .join(" "),
    );
    state.history.push(record);
    state.epoch = epoch + 1;
    state.stepInEpoch = 0;
    state.running = { loss: 0, correct: 0, counted: 0, examples: 0, seconds: 0 };
    for (const cb of o.callbacks ?? []) {
      if ((await cb.onEpochEnd?.(record, state)) === "stop") state.finished = true;
    }
    await save();
    if (interruptRequested()) throw new InterruptedError(`interrupted after epoch ${epoch + 1}`);
  }
  state.finished = true;
  state.rng = o.rng.getState();
  return state;
}

/** Gradients scaled by min(1, maxNorm / ‖g‖) (‖g‖ over all of them together). */
export async function clipByGlobalNorm(grads: Tensor[], maxNorm: number): Promise<Tensor[]> {
  const normT = tf.tidy(() => tf.addN(grads.map((g) => g.square().sum())).sqrt());
  const norm = (await normT.data())[0];
  normT.dispose();
  if (!(norm > maxNorm)) return grads;
  const scale = maxNorm / norm;
  return grads.map((g) => tf.tidy(() => g.mul(scale)));
}

/** The order of examples in `epoch`: a permutation of 0..n−1 that depends only on (seed, epoch). */
export function epochOrder(seed: number, epoch: number, n: number): Int32Array {
  return new Rng(seed * 7919 + epoch * 104729 + 1).permutation(n);
}

/** One-hot labels [n, classes] of examples `idx` of a labelled set (the caller disposes). */
export function oneHotLabels(
  ds: { labels: ArrayLike<number>; numClasses: number },
  idx: ArrayLike<number>,
): Tensor2D {
  return tf.tidy(() =>
    tf.oneHot(tf.tensor1d(Array.from(idx, (i) => ds.labels[i]), "int32"), ds.numClasses)
  ) as Tensor2D;
}

/** Softmax cross-entropy of logits against one-hot labels, and the count of argmax hits. */
export function softmaxClassification(logits: Tensor, oneHot: Tensor): LossResult {
  return {
    loss: tf.losses.softmaxCrossEntropy(oneHot, logits) as Scalar,
    correct: logits.argMax(-1).equal(oneHot.argMax(-1)).sum() as Scalar,
  };
}
