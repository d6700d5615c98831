import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../../../lib/backend/select.ts";
const threads = Number(Deno.args[0] ?? 1);
await initBackend("native", { threads });
const N = 64, H = 16;
function t(name: string, f: () => tf.Tensor | tf.Tensor[], flops: number) {
  for (let i = 0; i < 3; i++) tf.dispose(f());
  const reps = 20; const s = performance.now();
  for (let i = 0; i < reps; i++) { const r = f(); (Array.isArray(r) ? r[0] : r).dataSync(); tf.dispose(r); }
  const ms = (performance.now() - s) / reps;
  console.log(`${name.padEnd(28)} ${ms.toFixed(2)} ms  ${(flops / ms / 1e6).toFixed(0)} GFLOP/s`);
}
for (const [ci, co] of [[64, 16], [64, 64]]) {
  const x = tf.randomNormal([N, H, H, ci]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, ci, co]) as tf.Tensor4D;
  const dy = tf.randomNormal([N, H, H, co]) as tf.Tensor4D;
  const fl = 2 * N * H * H * 9 * ci * co;
  t(`fwd ${ci}->${co}`, () => tf.conv2d(x, w, 1, "same"), fl);
  t(`dx ${ci}->${co}`, () => tf.conv2dTranspose(dy, w, [N, H, H, ci], 1, "same"), fl);
  t(`fwd+dw (tf.grad) ${ci}->${co}`, () => tf.tidy(() => tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, ww as tf.Tensor4D, 1, "same"), dy)))(w)), 2 * fl);
}
