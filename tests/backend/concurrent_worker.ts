/// <reference lib="deno.worker" />
// Worker for concurrent_runtimes_test.ts: runs native kernels on seeded inputs, over and over,
// and reports how many repetitions differed from the first.
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";

self.onmessage = async (e: MessageEvent<{ seed: number; reps: number }>) => {
  await initBackend("native", { log: null });
  const { seed, reps } = e.data;
  const x = tf.randomNormal([16, 12, 12, 24], 0, 1, "float32", seed + 1) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 24, 32], 0, 1, "float32", seed + 2) as tf.Tensor4D;
  const r = tf.randomNormal([16, 12, 12, 32], 0, 1, "float32", seed + 3);
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same"), r))
      )([x, w]);
      return tf.concat([
        g[0].flatten(),
        g[1].flatten(),
        tf.matMul(x.reshape([-1, 24]), w.reshape([216, 32]).slice([0, 0], [24, 32])).flatten(),
      ]);
    });
  const first = step().dataSync().slice() as Float32Array;
  let differing = 0;
  for (let i = 0; i < reps; i++) {
    const t = step();
    const v = t.dataSync();
    if (v.some((a, j) => a !== first[j])) differing++;
    t.dispose();
  }
  self.postMessage({ differing, checksum: first.reduce((s: number, a: number) => s + a, 0) });
  self.close();
};
