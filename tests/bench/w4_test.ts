/**
 * W4's block against the peer's definition written out with stock TF.js ops (tf.moments,
 * tf.batchNorm, slices and concat): same output and same gradients of x0 and every parameter.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import { w4Block, w4Params } from "../../scripts/bench/w4_gunn.ts";
import { Rng } from "../../lib/util/rng.ts";
import { peerBlock } from "../layers/peer_block.ts";
import type { ReplaceBlockParams } from "../../lib/layers/gunn_block.ts";

await initBackend("cpu", { log: null });

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
    const unpack = (w: tf.Tensor[]) =>
      ({
        kernels: w.slice(0, S),
        gammas: w.slice(S, 2 * S),
        betas: w.slice(2 * S),
      }) as ReplaceBlockParams;
    const ref = loss((x, w) => peerBlock(x, unpack(w)));
    const out = w4Block(x0, p).dataSync(),
      refOut = peerBlock(x0, unpack([...p.kernels, ...p.gammas, ...p.betas])).dataSync();
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
