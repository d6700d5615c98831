/**
 * More threads asked than the native library has scratch slots for (GRADLAB_THREADS=200 on a
 * many-core server) are clamped, and a matrix product large enough to run threaded still equals
 * a float64 naive loop; split reductions give the same bits whatever the thread count.
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { initBackend } from "../../lib/backend/select.ts";
import { Rng } from "../../lib/util/rng.ts";
import { batchNormTrain } from "../../lib/layers/batch_norm.ts";

Deno.test({
  name: "native: 200 threads asked → clamped to 64; a threaded 256×384×320 GEMM matches float64",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const info = await initBackend("native", { threads: 200, log: null });
    assert.ok(info.threads >= 1 && info.threads <= 64, `threads ${info.threads}`);
    const M = 256, K = 384, N = 320; // 31 M multiply-adds: above the one-thread threshold
    const rng = new Rng(4);
    const a = rng.normals(M * K), b = rng.normals(K * N);
    const c = tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N]));
    const got = (await c.data()) as Float32Array;
    let worst = 0;
    for (let i = 0; i < M; i += 7) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
        worst = Math.max(worst, Math.abs(got[i * N + j] - s) / Math.sqrt(K));
      }
    }
    assert.ok(worst < 1e-5, `max scaled error ${worst}`);
    c.dispose();
    await initBackend("native", { log: null }); // back to the default thread count
  },
});

Deno.test({
  name:
    "native split reductions give the same bits at 1, 2 and 5 threads (filter gradient, batch norm, bias sums)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const rng = new Rng(9);
    // large enough that each reduction splits into parts: 32×16×16 output pixels
    const x = tf.tensor4d(rng.normals(32 * 16 * 16 * 24), [32, 16, 16, 24]);
    const dy = tf.tensor4d(rng.normals(32 * 16 * 16 * 32), [32, 16, 16, 32]);
    const rows = tf.tensor2d(rng.normals(8192 * 40), [8192, 40]);
    const run = (): number[][] => {
      // the filter gradient of a 3×3 convolution, the batch norm's output, column sums
      const ts = tf.tidy(() => {
        const w = tf.zeros([3, 3, 24, 32]);
        const dw = tf.grad((k: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(x, k as tf.Tensor4D, 1, "same"), dy))
        )(w);
        const { y, mean, variance } = batchNormTrain(x, tf.ones([24]), tf.zeros([24]), 1e-5);
        tf.dispose([mean, variance]);
        return [dw, y, tf.sum(rows, 0)];
      });
      const out = ts.map((t) => Array.from(t.dataSync()));
      tf.dispose(ts);
      return out;
    };
    const results: number[][][] = [];
    for (const threads of [1, 2, 5]) {
      await initBackend("native", { threads, log: null });
      results.push(run());
    }
    await initBackend("native", { log: null }); // back to the default thread count
    for (const [k, r] of results.entries()) {
      ["filter gradient", "batch norm", "column sums"].forEach((what, j) =>
        assert.deepStrictEqual(r[j], results[0][j], `${what} at thread count #${k + 1}`)
      );
    }
    tf.dispose([x, dy, rows]);
  },
});
