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

/** One way of computing the op: forward with what backward needs saved, and backward. */
interface BatchNormImpl {
  forward(
    x: tf.Tensor,
    gamma: tf.Tensor,
    beta: tf.Tensor,
    epsilon: number,
  ): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor; saved: tf.Tensor[] };
  /** [dx, dγ, dβ] */
  backward(dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[];
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
    ) as tf.Tensor[];
    return { y, mean, variance, saved: [x, gamma, mean, rstd] };
  },
  backward(dy, [x, gamma, mean, rstd]) {
    return tf.engine().runKernel(
      "GradlabBatchNormTrainGrad",
      { x, dy, gamma, mean, rstd },
      {},
    ) as tf.Tensor[];
  },
};

/**
 * y = γ·(x − μ)/√(var + ε) + β with the batch's μ and var per channel (last axis).
 * @returns y (differentiable in x, γ, β) and the batch mean and variance, which the caller owns
 * (dispose them; they are outside any tidy)
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const impl = tf.getKernel("GradlabBatchNormTrain", tf.getBackend()) ? fused : composed;
  let mean: tf.Tensor1D | null = null, variance: tf.Tensor1D | null = null;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as tf.Tensor[];
    const f = impl.forward(xi, g, b, epsilon);
    mean = tf.keep(f.mean) as tf.Tensor1D;
    variance = tf.keep(f.variance) as tf.Tensor1D;
    (args[3] as tf.GradSaveFunc)(f.saved);
    return {
      value: f.y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        impl.backward(dy as tf.Tensor, saved),
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  return { y, mean: mean!, variance: variance! };
}
