/**
 * The gradually updated convolution layer of GUNN (Qiao et al., ICML 2018; spec:
 * shared/papers/gunn.md, from the authors' Torch `GunnLayer.lua`).
 *
 * C channels are cut into S segments of o = C/S. Segment i has its own residual unit
 *
 *   unit_i(s) = BN(conv1×1 2o→o (ReLU(BN(conv3×3 2o→2o (ReLU(BN(conv1×1 C→2o (s))))))))
 *             + BN(conv1×1 C→o (s))                      (the projection branch, CIFAR models)
 *
 * and the segments are updated one after another: new_i = old_i + unit_i(state_i), where
 * state_i = concat(new_1 … new_{i−1}, old_i … old_S). In the "simultaneous" mode (SUNN, the
 * control arm with identical parameters and FLOPs) every unit reads the old input instead.
 * Convolutions have no bias; there is no activation after the update.
 *
 * {@link gunnUpdate} is the math as a pure function of tensors; {@link GunnLayer} wraps it as a
 * registered, serialisable `tf.layers.Layer` that owns the weights and the batch-norm running
 * statistics.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Layer, Shape, Tensor, Tensor1D, Tensor4D } from "../util/tf_types.ts";
import { tfSeed } from "../util/rng.ts";
import { batchNormTrain } from "./batch_norm.ts";
import { fusedGunnUnitsActive, fusedGunnUpdate, movedGunnStats } from "./gunn_fused.ts";

/** Gradual (GUNN) or simultaneous (SUNN) update of the segments. */
export type UpdateMode = "gradual" | "simultaneous";

/** One batch normalisation: scale, shift and running statistics, per channel. */
export interface BatchNormWeights {
  /** scale γ */
  gamma: Tensor1D;
  /** shift β */
  beta: Tensor1D;
  /** running mean */
  movingMean: Tensor1D;
  /** running variance */
  movingVariance: Tensor1D;
}

/** The weights of one segment's unit. Kernels are [kh, kw, in, out] (TF layout). */
export interface GunnUnitWeights {
  /** 1×1 convolution C → 2o */
  conv1: Tensor4D;
  /** its batch norm */
  bn1: BatchNormWeights;
  /** 3×3 convolution 2o → 2o */
  conv2: Tensor4D;
  /** its batch norm */
  bn2: BatchNormWeights;
  /** 1×1 convolution 2o → o */
  conv3: Tensor4D;
  /** its batch norm */
  bn3: BatchNormWeights;
  /** the projection branch: 1×1 convolution C → o and its batch norm */
  projection?: { conv: Tensor4D; bn: BatchNormWeights };
}

/** Batch statistics a training-mode pass used, to update the running ones. */
export interface BatchStats {
  /** batch mean per channel */
  mean: Tensor1D;
  /** biased batch variance per channel */
  variance: Tensor1D;
  /** values per channel that went into them (N·H·W) */
  count: number;
}

/** How {@link gunnUpdate} runs. */
export interface GunnUpdateOptions {
  /** gradual (GUNN) or simultaneous (SUNN) */
  mode: UpdateMode;
  /** batch statistics (true) or running statistics (false) in the batch norms */
  training: boolean;
  /** batch-norm ε */
  epsilon: number;
}

function batchNorm(
  x: Tensor4D,
  w: BatchNormWeights,
  o: GunnUpdateOptions,
  stats: BatchStats[],
): Tensor4D {
  if (!o.training) {
    return tf.batchNorm(x, w.movingMean, w.movingVariance, w.beta, w.gamma, o.epsilon);
  }
  const { y, mean, variance } = batchNormTrain(x, w.gamma, w.beta, o.epsilon);
  stats.push({ mean, variance, count: x.shape[0] * x.shape[1] * x.shape[2] });
  return y;
}

/** unit_i(state); pushes the batch statistics of its norms in the order bn1, bn2, bn3, projection. */
export function gunnUnit(
  state: Tensor4D,
  u: GunnUnitWeights,
  o: GunnUpdateOptions,
  stats: BatchStats[] = [],
): Tensor4D {
  let h = tf.relu(batchNorm(tf.conv2d(state, u.conv1, 1, "same"), u.bn1, o, stats));
  h = tf.relu(batchNorm(tf.conv2d(h, u.conv2, 1, "same"), u.bn2, o, stats));
  h = batchNorm(tf.conv2d(h, u.conv3, 1, "same"), u.bn3, o, stats);
  if (!u.projection) return h;
  return tf.add(
    h,
    batchNorm(tf.conv2d(state, u.projection.conv, 1, "same"), u.projection.bn, o, stats),
  );
}

/**
 * One GUNN layer on x [N, H, W, C] with S = units.length segments.
 * @returns the updated tensor and, in training mode, the batch statistics of every norm (unit by
 * unit, in {@link gunnUnit}'s order)
 */
export function gunnUpdate(
  x: Tensor4D,
  units: GunnUnitWeights[],
  o: GunnUpdateOptions,
): { y: Tensor4D; stats: BatchStats[] } {
  const S = units.length, C = x.shape[3];
  if (C % S !== 0) throw new RangeError(`GUNN: ${C} channels do not split into ${S} segments`);
  const width = C / S;
  // Slices, not tf.split: TF.js 4.22 loses gradient paths when split outputs feed several
  // concatenations (the stock-op reference test in tests/layers/gunn_test.ts checks gradients).
  const old = Array.from(
    { length: S },
    (_, i) => tf.slice(x, [0, 0, 0, i * width], [-1, -1, -1, width]) as Tensor4D,
  );
  const segments = [...old];
  const stats: BatchStats[] = [];
  for (let i = 0; i < S; i++) {
    // state_i: segments < i already new (gradual), or the old input throughout (simultaneous)
    const state = o.mode === "simultaneous" || i === 0 ? x : tf.concat(segments, 3);
    segments[i] = tf.add(old[i], gunnUnit(state, units[i], o, stats));
  }
  return { y: S === 1 ? segments[0] : tf.concat(segments, 3), stats };
}

/** Trainable parameters of one GUNN layer (conv kernels, BN γ and β). */
export function gunnLayerParamCount(channels: number, segments: number, projection = true): number {
  const o = channels / segments;
  const unit = channels * 2 * o + 9 * 2 * o * 2 * o + 2 * o * o + 2 * (2 * o + 2 * o + o) +
    (projection ? channels * o + 2 * o : 0);
  return segments * unit;
}

/** Configuration of {@link GunnLayer}. */
export interface GunnLayerArgs {
  /** segments S (channels must divide by S) */
  segments: number;
  /** "gradual" (GUNN, default) or "simultaneous" (SUNN) */
  mode?: UpdateMode;
  /** the 1×1 projection branch of the CIFAR models (default true) */
  projection?: boolean;
  /** batch-norm ε (default 1e-5, Torch's) */
  epsilon?: number;
  /** weight of the old running statistic per update (Torch's momentum 0.1 → 0.9) */
  momentum?: number;
  /** seed of the kernel initialisers */
  seed?: number;
  /** layer name */
  name?: string;
  /** input shape, for a first layer */
  inputShape?: Shape;
  /** whether the weights train (default true) */
  trainable?: boolean;
}

type LayerVar = tf.LayerVariable;
interface UnitVars {
  conv1: LayerVar;
  bn1: LayerVar[];
  conv2: LayerVar;
  bn2: LayerVar[];
  conv3: LayerVar;
  bn3: LayerVar[];
  projection?: { conv: LayerVar; bn: LayerVar[] };
}

/**
 * GUNN as a Keras-style layer. Kernels start N(0, 2/(k·k·C_out)) (the authors' init), γ = 1,
 * β = 0; in training mode the running statistics move by `1 − momentum` toward the batch's
 * (unbiased variance, as Torch).
 */
export class GunnLayer extends tf.layers.Layer {
  /** Name under which the class is registered for serialisation. */
  static className = "GunnLayer";
  /** segments S */
  readonly segments: number;
  /** gradual (GUNN) or simultaneous (SUNN) */
  readonly mode: UpdateMode;
  /** whether units have the projection branch */
  readonly projection: boolean;
  /** batch-norm ε */
  readonly epsilon: number;
  /** weight of the old running statistic per update */
  readonly momentum: number;
  /** seed of the kernel initialisers */
  readonly seed: number;
  private units: UnitVars[] = [];

  /** A layer with `args.segments` segments. */
  constructor(args: GunnLayerArgs) {
    super(args);
    this.segments = args.segments;
    this.mode = args.mode ?? "gradual";
    this.projection = args.projection ?? true;
    this.epsilon = args.epsilon ?? 1e-5;
    this.momentum = args.momentum ?? 0.9;
    this.seed = args.seed ?? 0;
  }

  /** Creates the weights for the input shape. */
  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const C = shape[3] as number, S = this.segments;
    if (C % S !== 0) {
      throw new RangeError(`GunnLayer ${this.name}: ${C} channels do not split into ${S} segments`);
    }
    const o = C / S;
    let seed = this.seed;
    const kernel = (name: string, k: number, cin: number, cout: number) =>
      this.addWeight(
        name,
        [k, k, cin, cout],
        "float32",
        tf.initializers.randomNormal({
          mean: 0,
          stddev: Math.sqrt(2 / (k * k * cout)),
          seed: tfSeed(seed++),
        }),
      );
    const norm = (name: string, c: number) => [
      this.addWeight(`${name}/gamma`, [c], "float32", tf.initializers.ones()),
      this.addWeight(`${name}/beta`, [c], "float32", tf.initializers.zeros()),
      this.addWeight(
        `${name}/moving_mean`,
        [c],
        "float32",
        tf.initializers.zeros(),
        undefined,
        false,
      ),
      this.addWeight(
        `${name}/moving_variance`,
        [c],
        "float32",
        tf.initializers.ones(),
        undefined,
        false,
      ),
    ];
    this.units = Array.from({ length: S }, (_, i) => ({
      conv1: kernel(`unit${i}/conv1`, 1, C, 2 * o),
      bn1: norm(`unit${i}/bn1`, 2 * o),
      conv2: kernel(`unit${i}/conv2`, 3, 2 * o, 2 * o),
      bn2: norm(`unit${i}/bn2`, 2 * o),
      conv3: kernel(`unit${i}/conv3`, 1, 2 * o, o),
      bn3: norm(`unit${i}/bn3`, o),
      projection: this.projection
        ? { conv: kernel(`unit${i}/proj`, 1, C, o), bn: norm(`unit${i}/proj_bn`, o) }
        : undefined,
    }));
    this.built = true;
  }

  /** The output shape: the input's. */
  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  /** The current weights as tensors (for {@link gunnUpdate}). */
  unitWeights(): GunnUnitWeights[] {
    const bn = (v: LayerVar[]): BatchNormWeights => ({
      gamma: v[0].read() as Tensor1D,
      beta: v[1].read() as Tensor1D,
      movingMean: v[2].read() as Tensor1D,
      movingVariance: v[3].read() as Tensor1D,
    });
    return this.units.map((u) => ({
      conv1: u.conv1.read() as Tensor4D,
      bn1: bn(u.bn1),
      conv2: u.conv2.read() as Tensor4D,
      bn2: bn(u.bn2),
      conv3: u.conv3.read() as Tensor4D,
      bn3: bn(u.bn3),
      projection: u.projection
        ? { conv: u.projection.conv.read() as Tensor4D, bn: bn(u.projection.bn) }
        : undefined,
    }));
  }

  /** The update of `inputs`; `kwargs.training` picks batch (true) or running statistics. */
  override call(inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as Tensor4D;
      const training = kwargs.training === true;
      if (training && this.projection && fusedGunnUnitsActive()) {
        // one native kernel per unit each way (gunn_fused.ts), the same math
        const { y, stats } = fusedGunnUpdate(x, this.unitWeights(), this.mode, this.epsilon);
        const count = x.shape[0] * x.shape[1] * x.shape[2];
        const norms = this.units.flatMap((u) => [u.bn1, u.bn2, u.bn3, u.projection!.bn]);
        const running = norms.flatMap((v) => [v[2].read(), v[3].read()]) as Tensor1D[];
        const moved = movedGunnStats(stats, running, this.momentum, count);
        norms.forEach((v, k) => {
          v[2].write(moved[2 * k]);
          v[3].write(moved[2 * k + 1]);
        });
        return y;
      }
      const { y, stats } = gunnUpdate(x, this.unitWeights(), {
        mode: this.mode,
        training,
        epsilon: this.epsilon,
      });
      if (training) this.updateRunningStats(stats);
      tf.dispose(stats.flatMap((t) => [t.mean, t.variance]));
      return y;
    });
  }

  /** Moves the running statistics toward the batch's. */
  private updateRunningStats(stats: BatchStats[]): void {
    const norms = this.units.flatMap((
      u,
    ) => [u.bn1, u.bn2, u.bn3, ...(u.projection ? [u.projection.bn] : [])]);
    norms.forEach((v, k) => {
      const { mean, variance, count } = stats[k];
      const m = this.momentum;
      const unbiased = count > 1 ? variance.mul(count / (count - 1)) : variance;
      v[2].write(tf.add(v[2].read().mul(m), mean.mul(1 - m)));
      v[3].write(tf.add(v[3].read().mul(m), unbiased.mul(1 - m)));
    });
  }

  /** The configuration to rebuild the layer. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      segments: this.segments,
      mode: this.mode,
      projection: this.projection,
      epsilon: this.epsilon,
      momentum: this.momentum,
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(GunnLayer);

/**
 * A GUNN layer ({@link GunnLayer}): `args.segments` segments updated one after another (or, with
 * `mode: "simultaneous"`, all from the input — SUNN). Use it like any TF.js layer.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 * import { gunnLayer } from "./gunn.ts";
 * const x = tf.randomNormal([2, 4, 4, 6], 0, 1, "float32", 1);
 * const layer = gunnLayer({ segments: 3, seed: 1 });
 * const y = layer.apply(x, { training: true }) as tf.Tensor;
 * assert.deepEqual(y.shape, [2, 4, 4, 6]);
 * // unit 3 runs last: changing its weights leaves segments 1 and 2 (channels 0–3) as they were
 * const w = layer.trainableWeights.find((v) => v.name.includes("unit2/conv1"))!;
 * w.write(tf.add(w.read(), 0.1));
 * const y2 = layer.apply(x, { training: true }) as tf.Tensor;
 * const part = (t: tf.Tensor, from: number) =>
 *   Array.from(t.slice([0, 0, 0, from], [-1, -1, -1, 2]).dataSync());
 * assert.deepEqual([part(y2, 0), part(y2, 2)], [part(y, 0), part(y, 2)]);
 * assert.notDeepEqual(part(y2, 4), part(y, 4));
 * ```
 */
export function gunnLayer(args: GunnLayerArgs): Layer {
  return new GunnLayer(args);
}
