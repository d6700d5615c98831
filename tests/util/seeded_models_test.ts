/**
 * Every model builder is reproducible for every seed, 0 included: TF.js treats a seed of 0 as
 * "unseeded" (Math.random), which once made the GradNet smoke run's first layer random.
 */
import assert from "node:assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import { cnnCifar } from "../../lib/models/cnn_cifar.ts";
import { buildBenchModel } from "../../scripts/bench/models.ts";
import { gunnNetwork, MINI_GUNN } from "../../lib/models/gunn.ts";
import { tfSeed } from "../../lib/util/rng.ts";

await initBackend("cpu", { log: null });

function weights(m: tf.LayersModel): Float32Array[] {
  return m.weights.map((w) => w.read().dataSync() as Float32Array);
}

Deno.test("tfSeed() never returns the seed TF.js ignores (0) and keeps seeds distinct", () => {
  const seen = new Set<number>();
  for (let s = -50; s <= 50; s++) {
    assert.notStrictEqual(tfSeed(s), 0);
    seen.add(tfSeed(s));
  }
  assert.strictEqual(seen.size, 101);
});

const builders: [string, (seed: number) => tf.LayersModel][] = [
  ["cnn_cifar", (seed) => cnnCifar(4, { inputShape: [12, 12, 1], classes: 3, seed })],
  ["bench mnist", (seed) => buildBenchModel("mnist_cnn", seed)],
  [
    "mini-GUNN",
    (seed) =>
      gunnNetwork({ arch: MINI_GUNN, mode: "gradual", inputShape: [8, 8, 3], classes: 4, seed }),
  ],
];
for (const [name, build] of builders) {
  Deno.test(`${name}: seed 0 twice gives identical weights, seed 1 other weights`, () => {
    const a = build(0), b = build(0), c = build(1);
    const [wa, wb, wc] = [weights(a), weights(b), weights(c)];
    wa.forEach((w, i) => assert.deepStrictEqual(w, wb[i], `${name} weight ${i}`));
    assert.ok(wa.some((w, i) => w.some((v, j) => v !== wc[i][j])), `${name}: seeds 0 and 1 agree`);
    for (const m of [a, b, c]) m.dispose();
  });
}
