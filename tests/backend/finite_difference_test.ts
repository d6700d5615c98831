/**
 * Finite-difference check of the gradient of a whole small CNN (convs with every padding kind,
 * ceil-mode max pooling, dense head, softmax cross-entropy) on the native and wasm backends: the
 * directional derivative (L(θ+εv) − L(θ−εv)) / 2ε must match ∇L·v.
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { type BackendChoice, initBackend } from "../../lib/backend/select.ts";
import { Rng } from "../../lib/util/rng.ts";

const SHAPES = {
  w1: [3, 3, 2, 4],
  b1: [4],
  w2: [5, 5, 4, 6],
  b2: [6],
  w3: [2 * 2 * 6, 5],
  b3: [5],
};
type Params = Record<keyof typeof SHAPES, tf.Tensor>;

function loss(p: Params, x: tf.Tensor4D, y: tf.Tensor2D): tf.Scalar {
  let h = tf.conv2d(x, p.w1 as tf.Tensor4D, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]).add(p.b1).tanh();
  h = tf.maxPool(h as tf.Tensor4D, 2, 2, "same"); // ceil mode: 7 → 4
  h = tf.conv2d(h as tf.Tensor4D, p.w2 as tf.Tensor4D, 2, "same").add(p.b2).tanh(); // 4 → 2
  const logits = h.reshape([x.shape[0], -1]).matMul(p.w3).add(p.b3);
  return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
}

async function check(backend: BackendChoice) {
  await initBackend(backend, { log: null });
  const rng = new Rng(3);
  const names = Object.keys(SHAPES) as (keyof typeof SHAPES)[];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const theta = Object.fromEntries(names.map((k) => [k, rng.normals(size(SHAPES[k]), 0.5)]));
  const x = tf.tensor4d(rng.normals(3 * 7 * 7 * 2), [3, 7, 7, 2]);
  const y = tf.oneHot(tf.tensor1d([0, 3, 4], "int32"), 5) as tf.Tensor2D;
  const make = (shift: Record<string, Float32Array> | null, eps: number) =>
    Object.fromEntries(names.map((k) => {
      const v = theta[k].map((t, i) => t + (shift ? eps * shift[k][i] : 0));
      return [k, tf.tensor(v, SHAPES[k])];
    })) as Params;
  const p0 = make(null, 0);
  const grads = tf.grads((...ts: tf.Tensor[]) =>
    loss(Object.fromEntries(names.map((k, i) => [k, ts[i]])) as Params, x, y)
  )(names.map((k) => p0[k]));
  const g = Object.fromEntries(names.map((k, i) => [k, grads[i].dataSync() as Float32Array]));
  const gnorm = Math.sqrt(names.reduce((s, k) => s + g[k].reduce((a, v) => a + v * v, 0), 0));
  // Directions: the gradient itself (largest signal) and two random ones.
  const dirs = [
    g,
    ...[1, 2].map(() => Object.fromEntries(names.map((k) => [k, rng.normals(theta[k].length)]))),
  ];
  const eps = 1e-3;
  for (const v of dirs) {
    const vnorm = Math.sqrt(names.reduce((s, k) => s + v[k].reduce((a, t) => a + t * t, 0), 0));
    const unit = Object.fromEntries(names.map((k) => [k, v[k].map((t) => t / vnorm)]));
    const analytic = names.reduce((s, k) => s + g[k].reduce((a, t, i) => a + t * unit[k][i], 0), 0);
    const lp = loss(make(unit, eps), x, y).dataSync()[0];
    const lm = loss(make(unit, -eps), x, y).dataSync()[0];
    const numeric = (lp - lm) / (2 * eps);
    const err = Math.abs(numeric - analytic) / gnorm;
    assert(
      err < 5e-3,
      `${backend}: directional derivative ${numeric} vs ${analytic} (error ${err})`,
    );
  }
}

for (const backend of ["native", "wasm"] as const) {
  Deno.test({
    name: `${backend}: finite differences agree with the gradient of a small CNN`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => check(backend),
  });
}
