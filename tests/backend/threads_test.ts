/**
 * More threads asked than the native library has scratch slots for (GRADLAB_THREADS=200 on a
 * many-core server) are clamped, and a matrix product large enough to run threaded still equals
 * a float64 naive loop.
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { initBackend } from "../../lib/backend/select.ts";
import { Rng } from "../../lib/util/rng.ts";

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
