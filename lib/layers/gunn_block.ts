/**
 * A gradually updated block in the GUNN paper's basic form, where each update *replaces* its
 * segment of channels: with the state s = x, unit j computes ReLU(BN(conv3×3(s, kernels[j])))
 * (C → C/S channels, 'same', no bias, batch norm in training mode) and writes it over segment j,
 * so later units see it; the block returns s + x. It is the benchmark peer's W4 block
 * (`shared/bench/peer/README.md`), trained and timed against PyTorch.
 *
 * Written with stock ops, every unit costs a slice, a concatenation of the whole state and, in the
 * backward pass, a split, pads and several whole-state additions: half of the block's time at one
 * thread. On the native backend the block is one kernel each way ({@link fusedGunnBlock}: the state
 * updated in place, its gradient accumulated in place); tests/layers/gunn_block_test.ts checks it
 * against the stock-op path, output and every gradient.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { batchNormTrain } from "./batch_norm.ts";
import { fusedGunnBlock, fusedGunnBlockActive } from "./gunn_fused.ts";
import type { Tensor1D, Tensor4D } from "../util/tf_types.ts";

/** The parameters of a block of S units. */
export interface ReplaceBlockParams {
  /** per unit j, its convolution kernel [3, 3, C, C/S] */
  kernels: Tensor4D[];
  /** per unit j, its norm's scale γ [C/S] */
  gammas: Tensor1D[];
  /** per unit j, its norm's shift β [C/S] */
  betas: Tensor1D[];
}

/**
 * The block with stock TF.js ops (every backend).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 * import { replaceBlockStock } from "./gunn_block.ts";
 * await tf.setBackend("cpu");
 * // two segments of one channel; kernels that copy channel 0 into the new segment
 * const k = tf.tensor4d([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [3, 3, 2, 1]);
 * const x = tf.tensor4d([1, 0, 3, 0], [2, 1, 1, 2]); // two images, 1×1
 * const y = replaceBlockStock(x, { kernels: [k, k], gammas: [tf.ones([1]), tf.ones([1])],
 *   betas: [tf.zeros([1]), tf.zeros([1])] }, 1e-3);
 * // segment 0: ReLU of channel 0 normalised over the batch (−1, +1 → 0, ≈1), plus x
 * assert.ok(Math.abs(y.dataSync()[2] - (3 + 0.9995)) < 1e-3);
 * ```
 */
export function replaceBlockStock(x: Tensor4D, p: ReplaceBlockParams, epsilon: number): Tensor4D {
  const S = p.kernels.length;
  const K = x.shape[3] / S;
  // Slices, not tf.split: TF.js 4.22 drops gradient paths when a split's outputs feed several
  // concatenations (tests/bench/w4_test.ts compares with the peer's slice-based definition).
  const segs = Array.from({ length: S }, (_, j) => tf.slice(x, [0, 0, 0, j * K], [-1, -1, -1, K]));
  let s = x;
  const stats: tf.Tensor[] = [];
  for (let j = 0; j < S; j++) {
    const { y, mean, variance } = batchNormTrain(
      tf.conv2d(s, p.kernels[j], 1, "same"),
      p.gammas[j],
      p.betas[j],
      epsilon,
    );
    stats.push(mean, variance);
    segs[j] = tf.relu(y);
    s = S === 1 ? segs[0] as Tensor4D : tf.concat(segs, 3) as Tensor4D;
  }
  tf.dispose(stats);
  return tf.add(s, x);
}

/**
 * The block, fused into one kernel each way where the backend has it (native), else
 * {@link replaceBlockStock}; `allowFusedGunnUnits(false)` (gunn_fused.ts) forces the stock ops.
 * The batch statistics are used, not returned.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 * import { replaceBlock, replaceBlockStock } from "./gunn_block.ts";
 * await tf.setBackend("cpu"); // no fused kernel here: the same as the stock path
 * const x = tf.randomNormal([2, 3, 3, 4], 0, 1, "float32", 1) as tf.Tensor4D;
 * const p = { kernels: [0, 1].map((s) => tf.randomNormal([3, 3, 4, 2], 0, 1, "float32", s) as tf.Tensor4D),
 *   gammas: [tf.ones([2]), tf.ones([2])] as tf.Tensor1D[], betas: [tf.zeros([2]), tf.zeros([2])] as tf.Tensor1D[] };
 * const d = tf.sub(replaceBlock(x, p, 1e-3), replaceBlockStock(x, p, 1e-3));
 * assert.equal(tf.max(tf.abs(d)).dataSync()[0], 0);
 * ```
 */
export function replaceBlock(x: Tensor4D, p: ReplaceBlockParams, epsilon: number): Tensor4D {
  if (!fusedGunnBlockActive()) return replaceBlockStock(x, p, epsilon);
  const { y, stats } = fusedGunnBlock(x, p.kernels, p.gammas, p.betas, epsilon);
  stats.dispose();
  return y;
}
