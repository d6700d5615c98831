/**
 * Training-mode batch normalisation over N, H, W as one differentiable op with a closed-form
 * gradient. TF.js differentiates `moments` + `batchNorm` through dozens of small kernels per
 * norm; networks with hundreds of norms (GUNN) spend most of a step in that bookkeeping. Here the
 * backward pass is
 *
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/(σ·m) · (m·dy − dβ − x̂·dγ),  x̂ = (x − μ)/σ, σ = √(var + ε),
 *
 * with m = N·H·W values per channel (biased variance in the normalisation, as every framework).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Shape, Tensor, Tensor1D, Tensor4D } from "../util/tf_types.ts";

/** One way of computing the op: forward with what backward needs saved, and backward. */
interface BatchNormImpl {
  forward(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    epsilon: number,
  ): { y: Tensor; mean: Tensor; variance: Tensor; saved: Tensor[] };
  /** [dx, dγ, dβ] */
  backward(dy: Tensor, saved: Tensor[]): Tensor[];
}

// Composed from TF.js ops (every backend).
const composed: BatchNormImpl = {
  forward(x, gamma, beta, epsilon) {
    const mean = tf.mean(x, [0, 1, 2]);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), [0, 1, 2]);
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const xhat = tf.mul(centred, rstd);
    return { y: tf.add(tf.mul(xhat, gamma), beta), mean, variance, saved: [xhat, rstd, gamma] };
  },
  backward(dy, [xhat, rstd, gamma]) {
    const m = xhat.size / xhat.shape[xhat.rank - 1];
    const dBeta = tf.sum(dy, [0, 1, 2]);
    const dGamma = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
    const scale = tf.mul(gamma, rstd).div(m);
    return [
      tf.mul(tf.sub(tf.sub(tf.mul(dy, m), dBeta), tf.mul(xhat, dGamma)), scale),
      dGamma,
      dBeta,
    ];
  },
};

// Two native kernels (the `native` backend registers them); x̂ is recomputed from x.
const fused: BatchNormImpl = {
  forward(x, gamma, beta, epsilon) {
    const [y, mean, variance, rstd] = tf.engine().runKernel(
      "GradlabBatchNormTrain",
      { x, gamma, beta },
      { epsilon } as unknown as tf.NamedAttrMap,
    ) as Tensor[];
    return { y, mean, variance, saved: [x, gamma, mean, rstd] };
  },
  backward(dy, [x, gamma, mean, rstd]) {
    return tf.engine().runKernel(
      "GradlabBatchNormTrainGrad",
      { x, dy, gamma, mean, rstd },
      {},
    ) as Tensor[];
  },
};

/**
 * y = γ·(x − μ)/√(var + ε) + β with the batch's μ and var per channel (last axis).
 * @returns y (differentiable in x, γ, β) and the batch mean and variance, which the caller owns
 * (dispose them; they are outside any tidy)
 */
export function batchNormTrain(
  x: Tensor4D,
  gamma: Tensor1D,
  beta: Tensor1D,
  epsilon: number,
): { y: Tensor4D; mean: Tensor1D; variance: Tensor1D } {
  const impl = tf.getKernel("GradlabBatchNormTrain", tf.getBackend()) ? fused : composed;
  let mean: Tensor1D | null = null, variance: Tensor1D | null = null;
  const op = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as Tensor[];
    const f = impl.forward(xi, g, b, epsilon);
    mean = tf.keep(f.mean) as Tensor1D;
    variance = tf.keep(f.variance) as Tensor1D;
    (args[3] as tf.GradSaveFunc)(f.saved);
    return {
      value: f.y,
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => impl.backward(dy as Tensor, saved),
    };
  });
  const y = op(x, gamma, beta) as Tensor4D;
  return { y, mean: mean!, variance: variance! };
}

/** Configuration of {@link BatchNorm}. */
export interface BatchNormArgs {
  /** weight of the old running statistic per update (Torch's momentum 0.1 → 0.9) */
  momentum?: number;
  epsilon?: number;
  name?: string;
  inputShape?: Shape;
  trainable?: boolean;
}

/**
 * Batch normalisation over N, H, W of a 4-D input as a Keras-style layer, on
 * {@link batchNormTrain} in training mode (two native kernels instead of TF.js's differentiated
 * `moments`: a mini-GUNN step spent more time in its five `tf.layers.batchNormalization` layers
 * than in its 30 fused GUNN units). γ starts at 1, β at 0; the running statistics move by
 * `1 − momentum` toward the batch's, the variance unbiased as in Torch (the GUNN authors' code).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 * import { BatchNorm } from "./batch_norm.ts";
 * const bn = new BatchNorm({ epsilon: 0 });
 * const x = tf.tensor4d([1, 3, 5, 7], [4, 1, 1, 1]); // mean 4, biased variance 5
 * const y = bn.apply(x, { training: true }) as tf.Tensor;
 * assert.ok(Math.abs(y.dataSync()[0] + 3 / Math.sqrt(5)) < 1e-6);
 * // running mean 0.9·0 + 0.1·4; running variance 0.9·1 + 0.1·(5·4/3)
 * const [, , mean, variance] = bn.getWeights().map((w) => w.dataSync()[0]);
 * assert.ok(Math.abs(mean - 0.4) < 1e-6 && Math.abs(variance - (0.9 + 2 / 3)) < 1e-6);
 * ```
 */
export class BatchNorm extends tf.layers.Layer {
  static className = "GradlabBatchNorm";
  readonly momentum: number;
  readonly epsilon: number;
  private vars: tf.LayerVariable[] = [];

  constructor(args: BatchNormArgs = {}) {
    super(args);
    this.momentum = args.momentum ?? 0.9;
    this.epsilon = args.epsilon ?? 1e-5;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const c = shape[shape.length - 1] as number;
    const one = tf.initializers.ones(), zero = tf.initializers.zeros();
    this.vars = [
      this.addWeight("gamma", [c], "float32", one),
      this.addWeight("beta", [c], "float32", zero),
      this.addWeight("moving_mean", [c], "float32", zero, undefined, false),
      this.addWeight("moving_variance", [c], "float32", one, undefined, false),
    ];
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override call(inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as Tensor4D;
      const [gamma, beta, mm, mv] = this.vars.map((v) => v.read() as Tensor1D);
      if (kwargs.training !== true) return tf.batchNorm(x, mm, mv, beta, gamma, this.epsilon);
      const { y, mean, variance } = batchNormTrain(x, gamma, beta, this.epsilon);
      const count = x.size / x.shape[3], m = this.momentum;
      if (tf.getKernel("GradlabMovingStats", tf.getBackend())) {
        const [nm, nv] = tf.engine().runKernel(
          "GradlabMovingStats",
          { mean, variance, movingMean: mm, movingVariance: mv },
          { momentum: m, count } as unknown as tf.NamedAttrMap,
        ) as Tensor[];
        this.vars[2].write(nm);
        this.vars[3].write(nv);
      } else {
        const unbiased = count > 1 ? variance.mul(count / (count - 1)) : variance;
        this.vars[2].write(tf.add(mm.mul(m), mean.mul(1 - m)));
        this.vars[3].write(tf.add(mv.mul(m), unbiased.mul(1 - m)));
      }
      tf.dispose([mean, variance]);
      return y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), momentum: this.momentum, epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(BatchNorm);
