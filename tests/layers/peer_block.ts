/**
 * The benchmark peer's GUNN block (W4, `shared/bench/peer/README.md`) written with stock TF.js ops
 * the way the peer writes it (tf.moments, tf.batchNorm, slices and concat): the reference for
 * `w4Block` (tests/bench/w4_test.ts) and the fused block (tests/layers/gunn_block_test.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { ReplaceBlockParams } from "../../lib/layers/gunn_block.ts";

/** Unit j: ReLU(BN(conv3×3(x))) replaces segment j of x; returns x + x0 (ε = 1e-3). */
export function peerBlock(x0: tf.Tensor4D, p: ReplaceBlockParams): tf.Tensor4D {
  let x = x0;
  const C = x0.shape[3], K = C / p.kernels.length;
  for (let j = 0; j < p.kernels.length; j++) {
    const c = tf.conv2d(x, p.kernels[j], 1, "same");
    const { mean, variance } = tf.moments(c, [0, 1, 2]);
    const y = tf.relu(tf.batchNorm(c, mean, variance, p.betas[j], p.gammas[j], 1e-3));
    const parts = [];
    if (j > 0) parts.push(x.slice([0, 0, 0, 0], [-1, -1, -1, j * K]));
    parts.push(y);
    if ((j + 1) * K < C) parts.push(x.slice([0, 0, 0, (j + 1) * K], [-1, -1, -1, C - (j + 1) * K]));
    x = tf.concat(parts, 3) as tf.Tensor4D;
  }
  return tf.add(x, x0);
}
