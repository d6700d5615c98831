/**
 * The replacement gradient of Mean (lib/backend/lean_gradients.ts) against TF.js 4.22's own
 * formula, (dy reshaped) · ones(x.shape) / n: the same bits, for every axis set, kept or not; and
 * tf.grad uses it once a backend is initialised.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import { meanGrad } from "../../lib/backend/lean_gradients.ts";
import { Rng } from "../../lib/util/rng.ts";

for (const backend of ["cpu", "native"] as const) {
  Deno.test(`Mean's gradient equals the stock formula bit for bit (${backend})`, async () => {
    await initBackend(backend, { log: null });
    const shape = [3, 4, 5];
    const x = tf.tensor3d(new Rng(1).normals(60), shape as [number, number, number]);
    for (
      const [axis, keepDims] of [[undefined, false], [[0, 1], false], [2, true], [[1], false]] as [
        number[] | number | undefined,
        boolean,
      ][]
    ) {
      tf.tidy(() => {
        const y = tf.mean(x, axis, keepDims);
        const dy = tf.tensor(new Rng(2).normals(y.size), y.shape);
        const axes = axis === undefined ? [0, 1, 2] : tf.util.parseAxisParam(axis, shape);
        const n = axes.reduce((p, a) => p * shape[a], 1);
        const expanded = shape.map((d, i) => (axes.includes(i) ? 1 : d));
        const stock = tf.div(tf.mul(tf.reshape(dy, expanded), tf.ones(shape, "float32")), n);
        const grads = meanGrad.gradFunc(dy, [x], { axis, keepDims } as unknown as tf.NamedAttrMap);
        const ours = (grads as Record<string, () => tf.Tensor>).x();
        assert.deepEqual(ours.shape, shape);
        assert.deepEqual(Array.from(ours.dataSync()), Array.from(stock.dataSync()), `axis ${axis}`);
        // and tf.grad goes through it: the gradient of mean(x · dyBroadcast)… compared by value
        const viaGrad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, axis, keepDims), dy)))(
          x,
        );
        assert.deepEqual(Array.from(viaGrad.dataSync()), Array.from(stock.dataSync()));
      });
    }
    x.dispose();
  });
}
