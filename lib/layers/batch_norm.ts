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
  if (tf.getKernel("GradlabBatchNormTrain", tf.getBackend())) {
    return fusedBatchNormTrain(x, gamma, beta, epsilon);
  }
  let mean: tf.Tensor1D | null = null, variance: tf.Tensor1D | null = null;
  const m = x.shape[0] * x.shape[1] * x.shape[2];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const mu = tf.mean(xi, [0, 1, 2]);
    const centred = tf.sub(xi, mu);
    const v = tf.mean(tf.square(centred), [0, 1, 2]);
    const rstd = tf.rsqrt(tf.add(v, epsilon));
    const xhat = tf.mul(centred, rstd);
    mean = tf.keep(mu) as tf.Tensor1D;
    variance = tf.keep(v) as tf.Tensor1D;
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xh, rs, gm] = saved, d = dy as tf.Tensor;
        const dBeta = tf.sum(d, [0, 1, 2]);
        const dGamma = tf.sum(tf.mul(d, xh), [0, 1, 2]);
        const scale = tf.mul(gm, rs).div(m);
        const dx = tf.mul(tf.sub(tf.sub(tf.mul(d, m), dBeta), tf.mul(xh, dGamma)), scale);
        return [dx, dGamma, dBeta];
      },
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  return { y, mean: mean!, variance: variance! };
}

// The same op as two native kernels (the `native` backend registers them).
function fusedBatchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  let mean: tf.Tensor1D | null = null, variance: tf.Tensor1D | null = null;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mu, v, rstd] = tf.engine().runKernel(
      "GradlabBatchNormTrain",
      { x: xi, gamma: g, beta: b },
      { epsilon } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    mean = tf.keep(mu) as tf.Tensor1D;
    variance = tf.keep(v) as tf.Tensor1D;
    save([xi, g, mu, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, gm, mus, rs] = saved;
        return tf.engine().runKernel("GradlabBatchNormTrainGrad", {
          x: xs,
          dy: dy as tf.Tensor,
          gamma: gm,
          mean: mus,
          rstd: rs,
        }, {}) as tf.Tensor[];
      },
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  return { y, mean: mean!, variance: variance! };
}
