/**
 * GUNN's segment update as one op per unit, on the native backend's fused kernels.
 *
 * Written with stock ops, one unit in training mode launches about 40 TF.js kernels forward and
 * 130 backward (convolutions, batch norms, ReLUs, their gradients, the saved-tensor clones, the
 * gradient sums of a state read twice); each costs tens of µs of dispatch whatever its size, and a
 * mini-GUNN step made 6,281 of them. Here a unit is one kernel forward ("GradlabGunnUnit") and one
 * backward ("GradlabGunnUnitGrad"), tied together with `tf.customGrad`; the math is
 * {@link gunnUnit}'s, and tests/layers/gunn_fused_test.ts checks the output, the batch statistics
 * and every gradient against it.
 *
 * The op takes the tensor it reads (`read`) and the one whose segment it updates (`base`):
 * `out = base` with segment i increased by unit_i(read). GUNN passes the current state as both;
 * SUNN reads the layer's input throughout.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { BatchStats, GunnUnitWeights, UpdateMode } from "./gunn.ts";

let fusedAllowed = true;

/**
 * Lets {@link GunnLayer} use the fused units where the backend has them (default), or not (the
 * stock-op path everywhere, for benchmarks and comparisons). Returns the previous setting.
 */
export function allowFusedGunnUnits(allowed: boolean): boolean {
  const was = fusedAllowed;
  fusedAllowed = allowed;
  return was;
}

/** Whether GUNN layers run their training-mode units fused: allowed and the backend has them. */
export function fusedGunnUnitsActive(): boolean {
  return fusedAllowed && tf.getKernel("GradlabGunnUnit", tf.getBackend()) !== undefined;
}

/**
 * out = base with channels [s0, s0 + o) increased by unit(read), training mode (batch statistics).
 * `u` must have its projection branch. Returns the output and the unit's batch statistics packed
 * as [3, 6o]: mean | biased variance | 1/√(var + ε), each bn1 (2o) | projection (o) | bn2 (2o) |
 * bn3 (o) (bn1 and the projection's norm run as one); the caller disposes them.
 */
export function fusedGunnUnit(
  read: tf.Tensor4D,
  base: tf.Tensor4D,
  u: GunnUnitWeights,
  segmentStart: number,
  epsilon: number,
): { y: tf.Tensor4D; stats: tf.Tensor2D } {
  if (!u.projection) throw new RangeError("fusedGunnUnit: the unit has no projection branch");
  const p = u.projection;
  // GUNN reads the tensor it updates: one input, and its gradient (dread + dout) summed natively
  const same = read === base;
  const weights = [
    u.conv1,
    u.conv2,
    u.conv3,
    p.conv,
    u.bn1.gamma,
    u.bn1.beta,
    u.bn2.gamma,
    u.bn2.beta,
    u.bn3.gamma,
    u.bn3.beta,
    p.bn.gamma,
    p.bn.beta,
  ];
  const lead = same ? 1 : 2;
  let packed: tf.Tensor | null = null;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args.slice(0, lead + 12) as tf.Tensor[];
    const save = args[lead + 12] as tf.GradSaveFunc;
    const [w1, w2, w3, wp, g1, b1, g2, b2, g3, b3, gp, bp] = t.slice(lead);
    const r = t[0];
    const [out, h1p, a1, h2, a2, h3, stats] = tf.engine().runKernel(
      "GradlabGunnUnit",
      {
        read: r,
        ...(same ? {} : { base: t[1] }),
        w1,
        w2,
        w3,
        wp,
        gamma1: g1,
        beta1: b1,
        gamma2: g2,
        beta2: b2,
        gamma3: g3,
        beta3: b3,
        gammaP: gp,
        betaP: bp,
      },
      { segmentStart, epsilon } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    packed = tf.keep(stats);
    save([r, w1, w2, w3, wp, g1, g2, g3, gp, h1p, a1, h2, a2, h3, stats]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], s: tf.Tensor[]) => {
        const [sr, sw1, sw2, sw3, swp, sg1, sg2, sg3, sgp, sh1p, sa1, sh2, sa2, sh3, sst] = s;
        const [dRead, ...dWeights] = tf.engine().runKernel(
          "GradlabGunnUnitGrad",
          {
            dout: dy as tf.Tensor,
            read: sr,
            w1: sw1,
            w2: sw2,
            w3: sw3,
            wp: swp,
            gamma1: sg1,
            gamma2: sg2,
            gamma3: sg3,
            gammaP: sgp,
            h1p: sh1p,
            a1: sa1,
            h2: sh2,
            a2: sa2,
            h3: sh3,
            stats: sst,
          },
          { segmentStart, accumulate: same } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
        // a separate `base` passes the gradient on unchanged
        return same ? [dRead, ...dWeights] : [dRead, dy as tf.Tensor, ...dWeights];
      },
    };
  });
  const y = (same ? op(read, ...weights) : op(read, base, ...weights)) as tf.Tensor4D;
  return { y, stats: packed! as tf.Tensor2D };
}

/**
 * One GUNN layer in training mode, unit by unit with {@link fusedGunnUnit}: gradual mode reads the
 * state as updated so far, simultaneous mode (SUNN) the input. Every unit needs its projection.
 * Returns the output and each unit's packed statistics (the caller disposes them).
 */
export function fusedGunnUpdate(
  x: tf.Tensor4D,
  units: GunnUnitWeights[],
  mode: UpdateMode,
  epsilon: number,
): { y: tf.Tensor4D; stats: tf.Tensor2D[] } {
  const S = units.length, C = x.shape[3];
  if (C % S !== 0) throw new RangeError(`GUNN: ${C} channels do not split into ${S} segments`);
  const width = C / S;
  let state = x;
  const stats: tf.Tensor2D[] = [];
  for (let i = 0; i < S; i++) {
    const r = fusedGunnUnit(
      mode === "simultaneous" ? x : state,
      state,
      units[i],
      i * width,
      epsilon,
    );
    state = r.y;
    stats.push(r.stats);
  }
  return { y: state, stats };
}

/**
 * Packed statistics of {@link fusedGunnUnit} as one entry per norm, in {@link gunnUnit}'s order;
 * `count` is N·H·W.
 */
export function unpackGunnStats(packed: tf.Tensor, count: number): BatchStats[] {
  const o = packed.shape[1]! / 6;
  return tf.tidy(() => {
    const [mean, variance] = tf.unstack(packed.slice([0, 0], [2, -1])) as tf.Tensor1D[];
    const widths = [2 * o, o, 2 * o, o];
    const [m1, mp, m2, m3] = tf.split(mean, widths) as tf.Tensor1D[];
    const [v1, vp, v2, v3] = tf.split(variance, widths) as tf.Tensor1D[];
    return [[m1, v1], [m2, v2], [m3, v3], [mp, vp]].map(([m, v]) => ({
      mean: m,
      variance: v,
      count,
    }));
  }) as unknown as BatchStats[];
}

/**
 * The running statistics of a unit's four norms moved toward the batch's, as
 * {@link GunnLayer}'s update: new = m·old + (1 − m)·batch, the variance unbiased by count/(count −
 * 1). `running` holds [mean, variance] per norm (bn1, bn2, bn3, projection); returns the new ones
 * in the same order. One kernel on the native backend instead of about 28.
 */
export function movedGunnStats(
  packed: tf.Tensor,
  running: tf.Tensor1D[],
  momentum: number,
  count: number,
): tf.Tensor1D[] {
  const inputs: Record<string, tf.Tensor> = { stats: packed };
  running.forEach((t, k) => (inputs[`running${k}`] = t));
  return tf.engine().runKernel(
    "GradlabGunnMovingStats",
    inputs,
    { momentum, count } as unknown as tf.NamedAttrMap,
  ) as tf.Tensor1D[];
}
