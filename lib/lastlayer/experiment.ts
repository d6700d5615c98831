/**
 * One "last layer = SVM" experiment: train a network with a 2-D feature layer to near-zero loss
 * and, every `evalEvery` steps, fit an SVM to the training features φ(x) and compare it with the
 * network's last layer (angle, boundary offsets, region agreement). Then the re-init arm: freeze φ,
 * re-initialise the last layer, train it alone, and measure the same.
 *
 * The reference is the theory's: the max-margin linear classifier with free biases on φ — the
 * hard-margin SVM for two classes, the multiclass hard-margin SVM for more — when φ is separable,
 * else its large-C limit, flagged (see {@link fitFeatureSvm}; the original compared with
 * scikit-learn's C = 1 SVC and one-vs-rest LinearSVC). Offsets are signed and in units of that
 * SVM's margin, per class pair (see {@link marginOffset}).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor2D } from "../util/tf_types.ts";
import type { RunDir } from "../run/run_dir.ts";
import { type Callback, epochOrder, type EpochRecord, type TrainState } from "../train/fit.ts";
import { Sgd } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { Rng } from "../util/rng.ts";
import { fitMaxMarginMulticlass } from "../svm/max_margin.ts";
import { lastLayer, type TwoDNet } from "./networks.ts";
import {
  angleDeg,
  binaryOf,
  boundingBox,
  closestPair,
  gridAgreement,
  type Linear2,
  marginOffset,
} from "./geometry.ts";

/** The data of an experiment: inputs stay tensors for the whole run. */
export interface ExperimentData {
  /** training inputs */
  x: Tensor;
  /** training labels */
  y: Int32Array;
  /** test inputs, if any */
  xTest?: Tensor;
  /** test labels, if any */
  yTest?: Int32Array;
  /** number of classes */
  classes: number;
  /** class names, by label */
  classNames: string[];
}

/** Training settings of an experiment. */
export interface ExperimentSettings {
  steps: number;
  evalEvery: number;
  lr: number;
  momentum: number;
  /** examples per step (0: the whole training set, i.e. gradient descent) */
  batch: number;
  reinitSteps: number;
  reinitEvalEvery: number;
  reinitLr: number;
  /** slack penalty of the reference max-margin SVM (1e6: the hard margin on separable φ) */
  svmC: number;
  /** stop training an arm once the full training cross-entropy is below this (0: never) */
  targetLoss: number;
  /** clip the gradient's global norm (0: no clipping) */
  clipNorm: number;
  seed: number;
  quiet?: boolean;
}

/** One row of the metric history. */
export interface MetricRow {
  /** "train", or "reinit" (last layer retrained from a fresh start) */
  phase: "train" | "reinit";
  /** training step */
  step: number;
  /** mean training loss of the segment */
  train_loss: number;
  /** training accuracy of the segment */
  train_acc: number | null;
  /** test accuracy (null without test data) */
  test_acc: number | null;
  /** binary: angle between w1 − w0 and the SVM's w; multi-class: mean over class pairs */
  angle_deg: number;
  /** multi-class: the largest pairwise angle */
  angle_max_deg: number;
  /** the network's boundary relative to the SVM's, along the SVM's normal in units of its margin:
   * 0 on it, ±1 on the positive / negative margin hyperplane (binary; multi-class: the mean over
   * pairs, each pair also in `offset_<a>_<c>`, and its angle in `angle_<a>_<c>`) */
  offset_nn_svm: number;
  /** the largest |offset| over class pairs */
  offset_max_abs: number;
  /** fraction of a grid over the features' bounding box where NN and SVM agree */
  agreement: number;
  /** mean cross-entropy of the network on the whole training set at this evaluation */
  train_ce: number;
  /** 1 when φ is separable (the reference is the hard-margin SVM), 0 for the large-C limit */
  svm_separable: number;
  /** the SVM solver's duality-gap bound at exit */
  svm_gap: number;
  /** per class pair a, c: the offset and the angle */
  [pair: `${"offset" | "angle"}_${number}_${number}`]: number;
}

/** The final state of an arm, for plots. */
export interface ArmSnapshot {
  phi: Float32Array;
  labels: Int32Array;
  nn: Linear2;
  svm: Linear2;
}

async function chunkedPhi(net: TwoDNet, x: Tensor, batch = 2048): Promise<Float32Array> {
  const n = x.shape[0];
  const out = new Float32Array(n * 2);
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const t = tf.tidy(() => net.phi(x.slice(s, b), false));
    out.set((await t.data()) as Float32Array, s * 2);
    t.dispose();
  }
  return out;
}

function nnLinear(W: number[][], b: number[]): Linear2 {
  // W: [2, K] → rows per class
  const K = b.length;
  return { W: Array.from({ length: K }, (_, k) => [W[0][k], W[1][k]]), b };
}

/** The reference SVM fitted on the features, as a 2-D linear layer. */
export interface FeatureSvm {
  /** the SVM as a 2-D linear layer */
  model: Linear2;
  /** the barrier's duality-gap bound at exit */
  gap: number;
  /** the solver closed its gap */
  converged: boolean;
  /** φ separable: the hard-margin SVM; otherwise the large-C limit */
  separable: boolean;
  /** for each class pair "a,c": the middle of its support vectors (where offsets are read) */
  centres: Map<string, [number, number]>;
}

/**
 * The theory's reference on the features: the max-margin linear classifier with free biases,
 * slack penalty C (1e6: the hard-margin SVM when φ is separable; K = 2 included, where it is the
 * binary hard-margin SVM on w₁ − w₀).
 */
export function fitFeatureSvm(
  phi: Float32Array,
  y: Int32Array,
  classes: number,
  C: number,
): FeatureSvm {
  const n = y.length;
  const m = fitMaxMarginMulticlass(phi, y, n, 2, classes, { C });
  // support vectors of each pair: constraints (i, c) of class-a points and (i, a) of class-c
  // points with a multiplier above 1e-6 of the largest
  let lmax = 0;
  for (const l of m.multipliers) lmax = Math.max(lmax, l);
  const sums = new Map<string, [number, number, number]>();
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < classes; c++) {
      if (m.multipliers[i * classes + c] <= 1e-6 * lmax) continue;
      const key = y[i] < c ? `${y[i]},${c}` : `${c},${y[i]}`;
      const s = sums.get(key) ?? [0, 0, 0];
      s[0] += phi[2 * i];
      s[1] += phi[2 * i + 1];
      s[2]++;
      sums.set(key, s);
    }
  }
  const centres = new Map<string, [number, number]>();
  for (const [k, v] of sums) centres.set(k, [v[0] / v[2], v[1] / v[2]]);
  return {
    model: { W: m.W.map((w) => [w[0], w[1]]), b: Array.from(m.b) },
    gap: m.gap,
    converged: m.converged,
    separable: m.separable,
    centres,
  };
}

/** Mean softmax cross-entropy of a 2-D linear layer on features φ (float64, stable). */
export function crossEntropy(phi: Float32Array, y: Int32Array, m: Linear2): number {
  const K = m.b.length;
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    let mx = -Infinity;
    const z = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      z[k] = m.W[k][0] * phi[2 * i] + m.W[k][1] * phi[2 * i + 1] + m.b[k];
      mx = Math.max(mx, z[k]);
    }
    let se = 0;
    for (let k = 0; k < K; k++) se += Math.exp(z[k] - mx);
    sum += mx + Math.log(se) - z[y[i]];
  }
  return sum / y.length;
}

/** Compares the last layer with the reference SVM fitted on the same features. */
export function compare(
  phi: Float32Array,
  y: Int32Array,
  classes: number,
  nn: Linear2,
  fitted: FeatureSvm,
): Omit<MetricRow, "phase" | "step" | "train_loss" | "train_acc" | "test_acc"> {
  const svm = fitted.model;
  const angles: number[] = [], offsets: number[] = [];
  const pairs: Record<string, number> = {};
  for (let a = 0; a < classes; a++) {
    for (let c = a + 1; c < classes; c++) {
      const u = binaryOf(nn, c, a), v = binaryOf(svm, c, a);
      const angle = angleDeg(u.w, v.w);
      // read where the pair's margin is decided; a pair without support vectors of its own (its
      // classes never meet) falls back to the midpoint of its closest points
      const at = fitted.centres.get(`${a},${c}`) ?? closestPair(phi, y, c, a).mid;
      const offset = marginOffset(u, v, at);
      angles.push(angle);
      offsets.push(offset);
      pairs[`angle_${a}_${c}`] = angle;
      pairs[`offset_${a}_${c}`] = offset;
    }
  }
  const binary = classes === 2;
  const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
  return {
    angle_deg: binary ? angles[0] : mean(angles),
    angle_max_deg: Math.max(...angles),
    offset_nn_svm: binary ? offsets[0] : mean(offsets),
    offset_max_abs: Math.max(...offsets.map(Math.abs)),
    agreement: gridAgreement(nn, svm, boundingBox(phi)),
    train_ce: crossEntropy(phi, y, nn),
    svm_separable: fitted.separable ? 1 : 0,
    svm_gap: fitted.gap,
    ...(binary ? {} : pairs),
  };
}

/** The comparison columns of a metrics record (the pair columns included). */
function comparisonOf(h: EpochRecord): Omit<
  MetricRow,
  "phase" | "step" | "train_loss" | "train_acc" | "test_acc"
> {
  const keep = Object.entries(h).filter(([k]) =>
    /^(angle_|offset_|agreement$|train_ce$|svm_)/.test(k)
  );
  return Object.fromEntries(keep) as unknown as ReturnType<typeof comparisonOf>;
}

async function accuracy(net: TwoDNet, x: Tensor, y: Int32Array): Promise<number> {
  const phiHost = await chunkedPhi(net, x);
  const pred = tf.tidy(() => {
    const phi = tf.tensor2d(phiHost, [x.shape[0], 2]);
    return lastLayer(net, phi).argMax(-1);
  });
  const p = (await pred.data()) as Int32Array;
  pred.dispose();
  let c = 0;
  p.forEach((v, i) => (c += v === y[i] ? 1 : 0));
  return c / y.length;
}

async function readLast(net: TwoDNet): Promise<Linear2> {
  return nnLinear(
    (await net.lastW.array()) as number[][],
    Array.from(await net.lastB.data()),
  );
}

/**
 * Trains the network (resumably, in the run folder under `name`), then the re-init arm.
 * @returns the metric rows of both arms and their final snapshots
 */
export async function runExperiment(
  run: RunDir,
  name: string,
  net: TwoDNet,
  data: ExperimentData,
  s: ExperimentSettings,
): Promise<{ rows: MetricRow[]; train: ArmSnapshot; reinit: ArmSnapshot }> {
  const n = data.y.length;
  const full = s.batch <= 0 || s.batch >= n;
  const yOneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(data.y, "int32"), data.classes));
  const rows: MetricRow[] = [];
  const snaps: { train?: ArmSnapshot; reinit?: ArmSnapshot } = {};
  const stepsPerSegment = Math.min(s.evalEvery, s.steps);
  const segments = Math.ceil(s.steps / stepsPerSegment);
  const batchesPerEpoch = full ? 1 : Math.floor(n / s.batch);
  const params = [...net.phiParams, net.lastW, net.lastB];
  // an arm ends early once its whole-training-set cross-entropy is below the target
  const untilTarget: Callback[] = s.targetLoss > 0
    ? [{ onEpochEnd: (r) => ((r.train_ce ?? Infinity) < s.targetLoss ? "stop" : undefined) }]
    : [];
  const optimizer = new Sgd(params, { momentum: s.momentum });

  const evaluate = async (
    phase: MetricRow["phase"],
    state: TrainState | null,
    loss: number,
    acc: number | null,
  ) => {
    const phi = await chunkedPhi(net, data.x);
    const nn = await readLast(net);
    const fitted = fitFeatureSvm(phi, data.y, data.classes, s.svmC);
    const row = compare(phi, data.y, data.classes, nn, fitted);
    const svm = fitted.model;
    const test = data.xTest && data.yTest ? await accuracy(net, data.xTest, data.yTest) : null;
    const r: MetricRow = {
      phase,
      step: state?.globalStep ?? 0,
      train_loss: loss,
      train_acc: acc,
      test_acc: test,
      ...row,
    };
    snaps.train = { phi, labels: data.y, nn, svm };
    return r;
  };

  type Batch = { x: Tensor; y: Tensor; size: number; owned: boolean };
  const state = await trainInRun<Batch>({
    run,
    name: `${name}-checkpoint.bin`,
    metricsFile: `${name}-train-metrics.csv`,
    label: `${name}`,
    params,
    variables: net.variables(),
    optimizer,
    baseLr: s.lr,
    schedule: { kind: "constant" },
    epochs: segments,
    stepsPerEpoch: stepsPerSegment,
    rng: new Rng(s.seed),
    checkpointEvery: stepsPerSegment,
    quiet: s.quiet,
    clipNorm: s.clipNorm > 0 ? s.clipNorm : undefined,
    callbacks: untilTarget,
    makeBatch(segment, step) {
      if (full) return { x: data.x, y: yOneHot, size: n, owned: false };
      const global = segment * stepsPerSegment + step;
      const epoch = Math.floor(global / batchesPerEpoch), pos = global % batchesPerEpoch;
      const idx = epochOrder(s.seed, epoch, n).subarray(pos * s.batch, (pos + 1) * s.batch);
      const it = tf.tensor1d(idx, "int32");
      const b = {
        x: tf.gather(data.x, it),
        y: tf.gather(yOneHot, it),
        size: idx.length,
        owned: true,
      };
      it.dispose();
      return b;
    },
    disposeBatch(b) {
      if (b.owned) tf.dispose([b.x, b.y]);
    },
    lossFn(b) {
      const z = lastLayer(net, net.phi(b.x, true));
      return {
        loss: tf.losses.softmaxCrossEntropy(b.y, z) as Scalar,
        correct: z.argMax(-1).equal(b.y.argMax(-1)).sum() as Scalar,
      };
    },
    async evaluate() {
      const r = await evaluate("train", null, NaN, null);
      const { phase: _p, step: _s, train_loss: _l, train_acc: _a, ...rest } = r;
      return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, v ?? NaN])) as Record<
        string,
        number
      >;
    },
  });
  optimizer.dispose();
  for (const h of state.history) {
    rows.push({
      phase: "train",
      step: h.step,
      train_loss: h.train_loss,
      train_acc: h.train_acc,
      test_acc: Number.isNaN(h.test_acc) ? null : (h.test_acc as number),
      ...comparisonOf(h),
    });
  }
  if (!snaps.train) await evaluate("train", state, NaN, null); // resumed after the last evaluation
  const trainSnap = snaps.train!;

  // Re-init arm: φ frozen, the last layer re-initialised and trained alone (gradient descent).
  // φ no longer changes, so one SVM serves every comparison.
  const frozenSvm = fitFeatureSvm(trainSnap.phi, data.y, data.classes, s.svmC);
  const phiFixed = tf.tensor2d(trainSnap.phi, [n, 2]);
  net.reinitLast(s.seed + 1000);
  const lastParams = [net.lastW, net.lastB];
  const opt2 = new Sgd(lastParams, {});
  const seg2 = Math.min(s.reinitEvalEvery, s.reinitSteps);
  const st2 = await trainInRun<Batch>({
    run,
    name: `${name}-reinit-checkpoint.bin`,
    metricsFile: `${name}-reinit-metrics.csv`,
    label: `${name} re-init`,
    params: lastParams,
    optimizer: opt2,
    baseLr: s.reinitLr,
    schedule: { kind: "constant" },
    epochs: Math.ceil(s.reinitSteps / seg2),
    stepsPerEpoch: seg2,
    rng: new Rng(s.seed + 1),
    checkpointEvery: seg2,
    quiet: s.quiet,
    callbacks: untilTarget,
    makeBatch: () => ({ x: phiFixed, y: yOneHot, size: n, owned: false }),
    disposeBatch() {},
    lossFn(b) {
      const z = lastLayer(net, b.x as Tensor2D);
      return {
        loss: tf.losses.softmaxCrossEntropy(b.y, z) as Scalar,
        correct: z.argMax(-1).equal(b.y.argMax(-1)).sum() as Scalar,
      };
    },
    async evaluate() {
      const nn = await readLast(net);
      const row = compare(trainSnap.phi, data.y, data.classes, nn, frozenSvm);
      snaps.reinit = { phi: trainSnap.phi, labels: data.y, nn, svm: frozenSvm.model };
      return row as unknown as Record<string, number>;
    },
  });
  opt2.dispose();
  for (const h of st2.history) {
    rows.push({
      phase: "reinit",
      step: h.step,
      train_loss: h.train_loss,
      train_acc: h.train_acc,
      test_acc: null,
      ...comparisonOf(h),
    });
  }
  if (!snaps.reinit) {
    const nn = await readLast(net);
    snaps.reinit = { ...trainSnap, nn, svm: frozenSvm.model };
  }
  tf.dispose([phiFixed, yOneHot]);
  return { rows, train: trainSnap, reinit: snaps.reinit };
}
