/**
 * A GUNN layer in training mode as one op on the native backend's fused kernels.
 *
 * Written with stock ops, one segment update launches about 40 TF.js kernels forward and 130
 * backward (convolutions, batch norms, ReLUs, their gradients, the saved-tensor clones, the
 * gradient sums of a state read twice); each costs tens of µs of dispatch whatever its size, and a
 * mini-GUNN step made 6,281 of them. Here a whole layer is one kernel forward ("GradlabGunnLayer":
 * every unit in turn, the state updated in place) and one backward ("GradlabGunnLayerGrad"), tied
 * together with `tf.customGrad`; the math is {@link gunnUnit}'s, and tests/layers/gunn_test.ts
 * checks the output, the running statistics and every gradient against the stock-op path and
 * against finite differences of a float64 reference.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { GunnUnitWeights, UpdateMode } from "./gunn.ts";
import type { Tensor, Tensor2D, Tensor4D } from "../util/tf_types.ts";

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
  return fusedAllowed && tf.getKernel("GradlabGunnLayer", tf.getBackend()) !== undefined;
}

/**
 * One GUNN layer in training mode as one op: a single native kernel forward
 * ("GradlabGunnLayer") and one backward, the state updated in place (no copy of the whole state
 * per unit). Gradual mode reads the state as updated so far, simultaneous mode (SUNN) the input.
 * Every unit needs its projection. Returns the output and the units' batch statistics packed as
 * [S, 18o]: per unit mean | biased variance | 1/√(var + ε), each bn1 (2o) | projection (o) |
 * bn2 (2o) | bn3 (o) (bn1 and the projection's norm run as one); the caller disposes them.
 */
export function fusedGunnUpdate(
  x: Tensor4D,
  units: GunnUnitWeights[],
  mode: UpdateMode,
  epsilon: number,
): { y: Tensor4D; stats: Tensor2D } {
  const S = units.length, C = x.shape[3];
  if (C % S !== 0) throw new RangeError(`GUNN: ${C} channels do not split into ${S} segments`);
  const weights = units.flatMap((u) => {
    if (!u.projection) throw new RangeError("fusedGunnUpdate: a unit has no projection branch");
    const p = u.projection;
    return [
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
    ] as Tensor[];
  });
  const attrs = { segments: S, gradual: mode === "gradual", epsilon };
  let stats: Tensor2D | null = null;
  const op = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [xi, ...w] = args.slice(0, 1 + 12 * S) as Tensor[];
    const save = args[1 + 12 * S] as tf.GradSaveFunc;
    const inputs: Record<string, Tensor> = { x: xi };
    w.forEach((t, k) => (inputs[`p${k}`] = t));
    const [y, acts, st] = tf.engine().runKernel(
      "GradlabGunnLayer",
      inputs,
      attrs as unknown as tf.NamedAttrMap,
    ) as Tensor[];
    stats = tf.keep(st) as Tensor2D;
    // the backward needs, per unit, w1, w2, w3, wp, γ1, γ2, γ3, γp
    const needed = Array.from(
      { length: S },
      (_, i) => [0, 1, 2, 3, 4, 6, 8, 10].map((k) => w[12 * i + k]),
    );
    save([xi, y, acts, st, ...needed.flat()]);
    return {
      value: y,
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [sx, sy, sacts, sst, ...sw] = saved;
        const gin: Record<string, Tensor> = {
          dy: dy as Tensor,
          x: sx,
          y: sy,
          acts: sacts,
          stats: sst,
        };
        sw.forEach((t, k) => (gin[`w${k}`] = t));
        return tf.engine().runKernel(
          "GradlabGunnLayerGrad",
          gin,
          attrs as unknown as tf.NamedAttrMap,
        ) as Tensor[];
      },
    };
  });
  const y = op(x, ...weights) as Tensor4D;
  return { y, stats: stats! };
}

/**
 * The running statistics of a layer's norms moved toward the batch's (`packed` from
 * {@link fusedGunnUpdate}), as {@link GunnLayer}'s update: new = m·old + (1 − m)·batch, the
 * variance unbiased by count/(count − 1). `running` holds, unit by unit, [mean, variance] per norm
 * (bn1, bn2, bn3, projection); returns the new ones in the same order. One kernel on the native
 * backend instead of about 28 a unit.
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

/**
 * A gradually updated block whose units replace their segment, as one op on the native backend
 * (kernels "GradlabGunnBlock" and "GradlabGunnBlockGrad"): unit j computes
 * ReLU(BN(conv3×3(state, kernels[j]))) (C → C/S channels, 'same', batch statistics) from the state
 * as updated so far and writes it over segment j; the result is state + x. Returns the result and
 * the units' batch statistics packed as [S, 3o] (mean | biased variance | 1/√(var + ε)), which the
 * caller disposes. {@link replaceBlock} in `gunn_block.ts` is the public entry.
 */
export function fusedGunnBlock(
  x: Tensor4D,
  kernels: Tensor[],
  gammas: Tensor[],
  betas: Tensor[],
  epsilon: number,
): { y: Tensor4D; stats: Tensor2D } {
  const S = kernels.length, C = x.shape[3];
  if (C % S !== 0) {
    throw new RangeError(`GUNN block: ${C} channels do not split into ${S} segments`);
  }
  const weights = kernels.flatMap((k, j) => [k, gammas[j], betas[j]]);
  const attrs = { segments: S, epsilon };
  let stats: Tensor2D | null = null;
  const op = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [xi, ...w] = args.slice(0, 1 + 3 * S) as Tensor[];
    const save = args[1 + 3 * S] as tf.GradSaveFunc;
    const inputs: Record<string, Tensor> = { x: xi };
    w.forEach((t, k) => (inputs[`p${k}`] = t));
    const [y, acts, st] = tf.engine().runKernel(
      "GradlabGunnBlock",
      inputs,
      attrs as unknown as tf.NamedAttrMap,
    ) as Tensor[];
    stats = tf.keep(st) as Tensor2D;
    // the backward needs, per unit, the kernel and γ
    save([xi, acts, st, ...w.filter((_, k) => k % 3 !== 2)]);
    return {
      value: y,
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [sx, sacts, sst, ...sw] = saved;
        const gin: Record<string, Tensor> = { dy: dy as Tensor, x: sx, acts: sacts, stats: sst };
        sw.forEach((t, k) => (gin[`w${k}`] = t));
        return tf.engine().runKernel(
          "GradlabGunnBlockGrad",
          gin,
          attrs as unknown as tf.NamedAttrMap,
        ) as Tensor[];
      },
    };
  });
  const y = op(x, ...weights) as Tensor4D;
  return { y, stats: stats! };
}

/** Whether {@link fusedGunnBlock} can run here: fused ops allowed and the backend has its kernel. */
export function fusedGunnBlockActive(): boolean {
  return fusedAllowed && tf.getKernel("GradlabGunnBlock", tf.getBackend()) !== undefined;
}
