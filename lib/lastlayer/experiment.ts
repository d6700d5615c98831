/**
 * One "last layer = SVM" experiment: train a network with a 2-D feature layer to near-zero loss
 * and, every `evalEvery` steps, fit an SVM to the training features φ(x) and compare it with the
 * network's last layer (angle, boundary offsets, region agreement). Then the re-init arm: freeze φ,
 * re-initialise the last layer, train it alone, and measure the same.
 *
 * The SVMs are the original's: scikit-learn's SVC(kernel="linear") for two classes, and
 * LinearSVC(multi_class="ovr") for more, both with C = 1 unless asked otherwise (see
 * {@link fitFeatureSvm}).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { RunDir } from "../run/run_dir.ts";
import { epochOrder, type TrainState } from "../train/fit.ts";
import { Sgd } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { Rng } from "../util/rng.ts";
import { fitBinarySvm } from "../svm/binary.ts";
import { fitOneVsRest } from "../svm/multiclass.ts";
import { lastLayer, type TwoDNet } from "./networks.ts";
import {
  angleDeg,
  binaryOf,
  boundingBox,
  closestPair,
  gridAgreement,
  type Linear2,
} from "./geometry.ts";

/** The data of an experiment: inputs stay tensors for the whole run. */
export interface ExperimentData {
  x: tf.Tensor;
  y: Int32Array;
  xTest?: tf.Tensor;
  yTest?: Int32Array;
  classes: number;
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
  svmC: number;
  /** clip the gradient's global norm (0: no clipping) */
  clipNorm: number;
  seed: number;
  quiet?: boolean;
}

/** One row of the metric history. */
export interface MetricRow {
  phase: "train" | "reinit";
  step: number;
  train_loss: number;
  train_acc: number | null;
  test_acc: number | null;
  /** binary: angle between w1 − w0 and the SVM's w; multi-class: mean over class pairs */
  angle_deg: number;
  /** multi-class: the largest pairwise angle */
  angle_max_deg: number;
  /** where each boundary crosses the segment between the classes' closest points (0.5 = midpoint),
   * as differences: NN − SVM, NN − midpoint, SVM − midpoint (binary; multi-class: mean |·| over pairs) */
  offset_nn_svm: number;
  offset_nn_mid: number;
  offset_svm_mid: number;
  /** fraction of a grid over the features' bounding box where NN and SVM agree */
  agreement: number;
  svm_gap: number;
}

/** The final state of an arm, for plots. */
export interface ArmSnapshot {
  phi: Float32Array;
  labels: Int32Array;
  nn: Linear2;
  svm: Linear2;
}

async function chunkedPhi(net: TwoDNet, x: tf.Tensor, batch = 2048): Promise<Float32Array> {
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

/** Where the line w·φ + b = 0 crosses the segment q → p (0 at q, 1 at p). */
function crossing(w: ArrayLike<number>, b: number, q: number[], p: number[]): number {
  const fq = w[0] * q[0] + w[1] * q[1] + b, fp = w[0] * p[0] + w[1] * p[1] + b;
  return fq === fp ? NaN : fq / (fq - fp);
}

/** An SVM fitted on the features, as a 2-D linear layer, with how well the solver converged. */
export interface FeatureSvm {
  model: Linear2;
  /** relative duality gap at exit */
  gap: number;
  converged: boolean;
}

/**
 * Fits the linear SVM on the features as the original did: binary — scikit-learn's
 * SVC(kernel="linear") (hinge loss, free bias; SMO here); several classes —
 * LinearSVC(multi_class="ovr") (squared hinge, the bias regularised through a constant feature;
 * dual coordinate descent here).
 */
export function fitFeatureSvm(
  phi: Float32Array,
  y: Int32Array,
  classes: number,
  C: number,
): FeatureSvm {
  const n = y.length;
  if (classes === 2) {
    const m = fitBinarySvm(phi, y, n, 2, {
      C,
      loss: "hinge",
      bias: "free",
      tol: 1e-6,
      maxIter: 50,
    });
    return {
      model: { W: [[0, 0], [m.w[0], m.w[1]]], b: [0, m.b] },
      gap: m.gap,
      converged: m.converged,
    };
  }
  const m = fitOneVsRest(phi, y, n, 2, classes, {
    C,
    loss: "squared_hinge",
    bias: "regularized",
    tol: 1e-6,
    maxIter: 5000,
  });
  return {
    model: { W: m.W.map((w) => [w[0], w[1]]), b: Array.from(m.b) },
    gap: m.gap,
    converged: m.converged,
  };
}

/** Compares the last layer with an SVM fitted on the same features. */
export function compare(
  phi: Float32Array,
  y: Int32Array,
  classes: number,
  nn: Linear2,
  fitted: FeatureSvm,
): Omit<MetricRow, "phase" | "step" | "train_loss" | "train_acc" | "test_acc"> {
  const svm = fitted.model;
  const angles: number[] = [], nnSvm: number[] = [], nnMid: number[] = [], svmMid: number[] = [];
  for (let a = 0; a < classes; a++) {
    for (let c = a + 1; c < classes; c++) {
      const u = binaryOf(nn, c, a), v = binaryOf(svm, c, a);
      angles.push(angleDeg(u.w, v.w));
      // The gap is measured between points the SVM separates: a few points on the wrong side (φ need
      // not be separable) would otherwise shrink it to nothing.
      const separated = (i: number) =>
        (v.w[0] * phi[2 * i] + v.w[1] * phi[2 * i + 1] + v.b > 0) === (y[i] === c);
      let cp;
      try {
        cp = closestPair(phi, y, c, a, { keep: separated });
      } catch { // the SVM puts a whole class on the wrong side: measure between all points
        cp = closestPair(phi, y, c, a);
      }
      const tn = crossing(u.w, u.b, cp.q, cp.p), ts = crossing(v.w, v.b, cp.q, cp.p);
      nnSvm.push(tn - ts);
      nnMid.push(tn - 0.5);
      svmMid.push(ts - 0.5);
    }
  }
  const binary = classes === 2;
  const agg = (
    xs: number[],
  ) => (binary ? xs[0] : xs.reduce((s, v) => s + Math.abs(v), 0) / xs.length);
  return {
    angle_deg: binary ? angles[0] : angles.reduce((s, v) => s + v, 0) / angles.length,
    angle_max_deg: Math.max(...angles),
    offset_nn_svm: agg(nnSvm),
    offset_nn_mid: agg(nnMid),
    offset_svm_mid: agg(svmMid),
    agreement: gridAgreement(nn, svm, boundingBox(phi)),
    svm_gap: fitted.gap,
  };
}

async function accuracy(net: TwoDNet, x: tf.Tensor, y: Int32Array): Promise<number> {
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
  let svmWarnings = 0;
  const snaps: { train?: ArmSnapshot; reinit?: ArmSnapshot } = {};
  const stepsPerSegment = Math.min(s.evalEvery, s.steps);
  const segments = Math.ceil(s.steps / stepsPerSegment);
  const batchesPerEpoch = full ? 1 : Math.floor(n / s.batch);
  const params = [...net.phiParams, net.lastW, net.lastB];
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
    if (!fitted.converged) svmWarnings++;
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

  type Batch = { x: tf.Tensor; y: tf.Tensor; size: number; owned: boolean };
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
        loss: tf.losses.softmaxCrossEntropy(b.y, z) as tf.Scalar,
        correct: z.argMax(-1).equal(b.y.argMax(-1)).sum() as tf.Scalar,
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
      angle_deg: h.angle_deg as number,
      angle_max_deg: h.angle_max_deg as number,
      offset_nn_svm: h.offset_nn_svm as number,
      offset_nn_mid: h.offset_nn_mid as number,
      offset_svm_mid: h.offset_svm_mid as number,
      agreement: h.agreement as number,
      svm_gap: h.svm_gap as number,
    });
  }
  if (!snaps.train) await evaluate("train", state, NaN, null); // resumed after the last evaluation
  const trainSnap = snaps.train!;

  if (svmWarnings > 0) {
    console.error(
      `warning: ${name}: the SVM solver stopped before a duality gap of 1e-6 in ${svmWarnings} of its fits (see svm_gap)`,
    );
  }

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
    makeBatch: () => ({ x: phiFixed, y: yOneHot, size: n, owned: false }),
    disposeBatch() {},
    lossFn(b) {
      const z = lastLayer(net, b.x as tf.Tensor2D);
      return {
        loss: tf.losses.softmaxCrossEntropy(b.y, z) as tf.Scalar,
        correct: z.argMax(-1).equal(b.y.argMax(-1)).sum() as tf.Scalar,
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
      angle_deg: h.angle_deg as number,
      angle_max_deg: h.angle_max_deg as number,
      offset_nn_svm: h.offset_nn_svm as number,
      offset_nn_mid: h.offset_nn_mid as number,
      offset_svm_mid: h.offset_svm_mid as number,
      agreement: h.agreement as number,
      svm_gap: h.svm_gap as number,
    });
  }
  if (!snaps.reinit) {
    const nn = await readLast(net);
    snaps.reinit = { ...trainSnap, nn, svm: frozenSvm.model };
  }
  tf.dispose([phiFixed, yOneHot]);
  return { rows, train: trainSnap, reinit: snaps.reinit };
}
