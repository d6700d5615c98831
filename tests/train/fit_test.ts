/** The training loop: learning, tensor hygiene, the divergence guard and the ladder callback. */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { initBackend } from "../../lib/backend/select.ts";
import { DivergenceError, epochOrder, fit } from "../../lib/train/fit.ts";
import { ladderCallback } from "../../lib/train/callbacks.ts";
import { Sgd } from "../../lib/train/optimizers.ts";
import { Rng } from "../../lib/util/rng.ts";
import { syntheticImages } from "../../lib/data/synthetic.ts";
import { imageBatch, labelBatch } from "../../lib/data/dataset.ts";

await initBackend("native", { log: null, threads: 1 });

const data = syntheticImages({ n: 128, height: 8, width: 8, channels: 1, numClasses: 4, seed: 2 });

function smallModel() {
  const m = tf.sequential();
  m.add(
    tf.layers.conv2d({
      inputShape: [8, 8, 1],
      filters: 4,
      kernelSize: 3,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  m.add(tf.layers.flatten());
  m.add(
    tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  );
  return m;
}

type B = { x: tf.Tensor; y: tf.Tensor; size: number };

function options(model: tf.Sequential, epochs: number) {
  const params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  return {
    params,
    optimizer: new Sgd(params, { momentum: 0.9 }),
    baseLr: 0.05,
    schedule: { kind: "constant" as const },
    epochs,
    stepsPerEpoch: 8,
    rng: new Rng(0),
    quiet: true,
    makeBatch(epoch: number, step: number): B {
      const idx = epochOrder(0, epoch, data.n).subarray(step * 16, step * 16 + 16);
      return {
        x: imageBatch(data, idx),
        y: tf.tidy(() => tf.oneHot(tf.tensor1d(labelBatch(data, idx), "int32"), 4)),
        size: 16,
      };
    },
    lossFn(b: B) {
      const logits = model.apply(b.x, { training: true }) as tf.Tensor;
      return {
        loss: tf.losses.softmaxCrossEntropy(b.y, logits) as tf.Scalar,
        correct: logits.argMax(-1).equal(b.y.argMax(-1)).sum() as tf.Scalar,
      };
    },
  };
}

Deno.test("fit() learns a learnable task and keeps the tensor count constant across epochs", async () => {
  const model = smallModel();
  const counts: number[] = [];
  const state = await fit<B>({
    ...options(model, 4),
    callbacks: [{ onEpochEnd: () => void counts.push(tf.memory().numTensors) }],
  });
  assert.strictEqual(state.history.length, 4);
  assert.ok(
    state.history[3].train_loss < state.history[0].train_loss * 0.5,
    JSON.stringify(state.history),
  );
  assert.ok(
    state.history[3].train_acc! > 0.75,
    JSON.stringify(state.history.map((h) => h.train_acc)),
  );
  // Epoch 1 creates the optimizer's slots; from then on nothing may accumulate.
  assert.deepStrictEqual(counts.slice(1), [counts[1], counts[1], counts[1]]);
});

Deno.test("fit() stops on a NaN loss with the step and the value", async () => {
  const model = smallModel();
  const o = options(model, 2);
  let calls = 0;
  await assert.rejects(
    fit<B>({
      ...o,
      lossFn: (b) => {
        const r = o.lossFn(b);
        return ++calls === 3 ? { loss: r.loss.mul(NaN) as tf.Scalar } : r;
      },
    }),
    (e: Error) =>
      e instanceof DivergenceError && /loss diverged at step 3 \(epoch 1\): NaN/.test(e.message),
  );
});

Deno.test("fit() stops on infinite weights and names the parameter", async () => {
  const model = smallModel();
  const o = options(model, 1);
  await assert.rejects(
    fit<B>({
      ...o,
      lossFn: (b) => ({
        loss: tf.addN(o.params.map((p) => p.sum())).mul(1e38).add(o.lossFn(b).loss) as tf.Scalar,
      }),
    }),
    (e: Error) => e instanceof DivergenceError && /diverged/.test(e.message),
  );
});

Deno.test("ladderCallback() snapshots each target once, in order, the first time it is reached", async () => {
  const accs = [0.3, 0.5, 0.7, 0.9];
  const got: [number, number][] = [];
  const model = smallModel();
  await fit<B>({
    ...options(model, 4),
    stepsPerEpoch: 1,
    evaluate: (epoch) => Promise.resolve({ test_acc: accs[epoch] }),
    callbacks: [
      ladderCallback({
        targets: [0.6, 0.4, 0.45],
        metric: "test_acc",
        onReach: (t, r) => Promise.resolve(void got.push([t, r.epoch])),
      }),
    ],
  });
  assert.deepStrictEqual(got, [[0.4, 2], [0.45, 2], [0.6, 3]]);
});

Deno.test("fit() records, per epoch, the learning rate its last step used (Torch per-epoch steps too)", async () => {
  const model = smallModel();
  const o = options(model, 4);
  const used: number[] = []; // the rate of every step
  const spy = { apply: (g: tf.Tensor[], lr: number) => (used.push(lr), o.optimizer.apply(g, lr)) };
  for (const torchEpochs of [true, false]) {
    used.length = 0;
    const state = await fit<B>({
      ...o,
      optimizer: spy as unknown as Sgd,
      epochs: 4,
      schedule: { kind: "multistep", atFractions: [0.5, 0.75], gamma: 0.1, torchEpochs },
    });
    const perEpochLast = [0, 1, 2, 3].map((e) => used[e * o.stepsPerEpoch + o.stepsPerEpoch - 1]);
    assert.deepStrictEqual(state.history.map((h) => h.lr), perEpochLast);
    if (torchEpochs) {
      // 1-based epochs 1–4 of 4: drops at epoch 2 (≥ 0.5·4) and 3 (≥ 0.75·4), whole epochs at a rate
      const perEpoch = [0, 1, 2, 3].map((e) => used.slice(e * 8, e * 8 + 8));
      assert.ok(perEpoch.every((r) => r.every((v) => v === r[0])));
      assert.deepStrictEqual(
        perEpoch.map((r) => +r[0].toPrecision(6)),
        [0.05, 0.005, 0.0005, 0.0005],
      );
    }
  }
});
