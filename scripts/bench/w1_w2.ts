/**
 * W1 (Adam training throughput, batch 64) and W2 (inference throughput, batch 256) on the
 * benchmark CNNs, as defined in `shared/bench/peer/README.md`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { type BenchModelName, buildBenchModel } from "./models.ts";
import { Rng } from "../../lib/util/rng.ts";
import { countParams } from "../../lib/models/cnn_cifar.ts";
import { timeWindows } from "./timing.ts";
import { type BenchContext, type BenchLine, dateUtc, windows } from "./result.ts";

/** A fixed batch: x ~ N(0,1), y uniform over 10 classes (one-hot), seeded. */
export function fixedBatch(
  shape: number[],
  batch: number,
  seed = 0,
): { x: tf.Tensor; y: tf.Tensor } {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, batch);
  const labels = Array.from({ length: batch }, () => rng.int(10));
  return {
    x: tf.tensor(rng.normals(size), [batch, ...shape]),
    y: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 10)),
  };
}

/** W1: one step = forward, mean softmax cross-entropy, backward, Adam update. */
export async function benchTrain(ctx: BenchContext, name: BenchModelName): Promise<BenchLine> {
  const model = buildBenchModel(name);
  const { x, y } = fixedBatch(model.inputs[0].shape.slice(1) as number[], 64);
  const opt = tf.train.adam(1e-3, 0.9, 0.999, 1e-7);
  const step = () =>
    opt.minimize(
      () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor),
      true,
    ) as tf.Scalar;
  const l0 = step();
  const firstLoss = (await l0.data())[0];
  l0.dispose();
  for (let i = 0; i < (ctx.quick ? 0 : 4); i++) step().dispose();
  const timing = await timeWindows(step, 64, {
    ...windows(ctx, { minS: 1, repeats: 3 }),
    sync: "window",
  });
  const ll = step();
  const lastLoss = (await ll.data())[0];
  ll.dispose();
  const params = countParams(model);
  tf.dispose([x, y]);
  model.dispose();
  opt.dispose();
  return {
    workload: "W1",
    model: name,
    backend: ctx.backend,
    threads: ctx.threads,
    batch: 64,
    variant: "",
    date_utc: dateUtc(),
    ...timing,
    params,
    first_loss: firstLoss,
    last_loss: lastLoss,
  };
}

/** W2: forward to the logits at batch 256, no gradient. */
export async function benchInfer(ctx: BenchContext, name: BenchModelName): Promise<BenchLine> {
  const model = buildBenchModel(name);
  const { x, y } = fixedBatch(model.inputs[0].shape.slice(1) as number[], 256);
  const call = () => model.predict(x) as tf.Tensor;
  for (let i = 0; i < (ctx.quick ? 1 : 3); i++) call().dispose();
  const timing = await timeWindows(call, 256, {
    ...windows(ctx, { minS: 1, repeats: 3 }),
    sync: "window",
  });
  tf.dispose([x, y]);
  model.dispose();
  return {
    workload: "W2",
    model: name,
    backend: ctx.backend,
    threads: ctx.threads,
    batch: 256,
    variant: "",
    date_utc: dateUtc(),
    ...timing,
  };
}
