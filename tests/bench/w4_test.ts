/**
 * W4's block against the peer's definition written out with stock TF.js ops (tf.moments,
 * tf.batchNorm, slices and concat): same output and same gradients of x0 and every parameter.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import { w4Block, w4Params } from "../../scripts/bench/w4_gunn.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend("cpu", { log: null });

function peerBlock(x0: tf.Tensor4D, k: tf.Tensor[], g: tf.Tensor[], b: tf.Tensor[], K: number) {
  let x = x0;
  const C = x0.shape[3];
  for (let j = 0; j < k.length; j++) {
    const c = tf.conv2d(x, k[j] as tf.Tensor4D, 1, "same");
    const { mean, variance } = tf.moments(c, [0, 1, 2]);
    const y = tf.relu(tf.batchNorm(c, mean, variance, b[j], g[j], 1e-3));
    const parts = [];
    if (j > 0) parts.push(x.slice([0, 0, 0, 0], [-1, -1, -1, j * K]));
    parts.push(y);
    if ((j + 1) * K < C) parts.push(x.slice([0, 0, 0, (j + 1) * K], [-1, -1, -1, C - (j + 1) * K]));
    x = tf.concat(parts, 3) as tf.Tensor4D;
  }
  return tf.add(x, x0);
}

for (const [C, K] of [[8, 2], [6, 6]]) {
  Deno.test(`W4 block (C = ${C}, K = ${K}) equals the peer's definition, values and gradients`, () => {
    const p = w4Params(C, K, 3);
    const S = C / K;
    // non-trivial γ and β so that their gradients are tested too
    p.gammas.forEach((v, j) => v.assign(tf.fill([K], 1 + 0.1 * j)));
    p.betas.forEach((v, j) => v.assign(tf.fill([K], 0.05 * j)));
    const x0 = tf.tensor4d(new Rng(4).normals(2 * 5 * 5 * C), [2, 5, 5, C]);
    const vars = [...p.kernels, ...p.gammas, ...p.betas];
    const loss = (f: (x: tf.Tensor4D, w: tf.Tensor[]) => tf.Tensor) =>
      tf.grads((x: tf.Tensor, ...w: tf.Tensor[]) => tf.mean(tf.square(f(x as tf.Tensor4D, w))))(
        [x0, ...vars],
      );
    const ours = loss((x, w) =>
      w4Block(x, {
        kernels: w.slice(0, S) as tf.Variable[],
        gammas: w.slice(S, 2 * S) as tf.Variable[],
        betas: w.slice(2 * S) as tf.Variable[],
      })
    );
    const ref = loss((x, w) => peerBlock(x, w.slice(0, S), w.slice(S, 2 * S), w.slice(2 * S), K));
    const out = w4Block(x0, p).dataSync(),
      refOut = peerBlock(
        x0,
        p.kernels,
        p.gammas,
        p.betas,
        K,
      ).dataSync();
    out.forEach((v, i) =>
      assert.ok(Math.abs(v - refOut[i]) < 1e-5, `output ${i}: ${v} vs ${refOut[i]}`)
    );
    ours.forEach((g, t) => {
      const a = g.dataSync(), r = ref[t].dataSync();
      a.forEach((v, i) =>
        assert.ok(
          Math.abs(v - r[i]) < 1e-5 + 1e-4 * Math.abs(r[i]),
          `grad ${t}[${i}]: ${v} vs ${r[i]}`,
        )
      );
    });
  });
}
