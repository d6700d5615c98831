/**
 * Replacements for stock TF.js gradients that build large constants on the JavaScript side.
 *
 * TF.js 4.22's gradient of `Mean` is (dy reshaped) · ones(x.shape) / n, and `ones` fills a fresh
 * JavaScript array the size of x and uploads it: for W4's loss, mean(out²) over 1 M values, that
 * was ~1,000 page faults and ~1.5 ms of a 25 ms step on the native backend. Broadcasting dy / n
 * (the Tile kernel) gives the same bits: dy · 1 = dy exactly, and the division is then the same
 * division of the same value. tests/backend/lean_gradients_test.ts compares with the stock one.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/**
 * The gradient of `Mean` without a JavaScript-side ones tensor (same values as the stock one).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 * import { meanGrad } from "./lean_gradients.ts";
 * await tf.setBackend("cpu");
 * const x = tf.zeros([2, 3]);
 * const dx = meanGrad.gradFunc(tf.tensor1d([6, 3]), [x], { axis: 1, keepDims: false }) as
 *   Record<string, () => tf.Tensor>;
 * assert.deepEqual(Array.from(dx.x().dataSync()), [2, 2, 2, 1, 1, 1]);
 * ```
 */
export const meanGrad: tf.GradConfig = {
  kernelName: "Mean",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const axes = tf.util.parseAxisParam(
      (attrs as unknown as { axis: number | number[] }).axis,
      x.shape,
    );
    const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    return {
      x: () => tf.broadcastTo(tf.div(tf.reshape(dy as tf.Tensor, expanded), n), x.shape),
    };
  },
};

/** Registers the replacement gradients (for every backend: the values do not change). */
export function installLeanGradients(): void {
  tf.registerGradient(meanGrad);
}
