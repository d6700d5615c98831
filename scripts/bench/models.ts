/**
 * The benchmark networks of `shared/bench/peer/README.md` (W1–W3), NHWC, glorot-uniform kernels,
 * zero biases: `cifar_cnn` (P = 1,250,858) and `mnist_cnn` (P = 1,199,882).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { tfSeed } from "../../lib/util/rng.ts";

/** Names of the benchmark models. */
export type BenchModelName = "cifar_cnn" | "mnist_cnn";

/** Input shape (HWC) of each benchmark model. */
export const BENCH_INPUT_SHAPE: Record<BenchModelName, [number, number, number]> = {
  cifar_cnn: [32, 32, 3],
  mnist_cnn: [28, 28, 1],
};

/** Builds a benchmark model; `seed` fixes the glorot-uniform initial weights. */
export function buildBenchModel(name: BenchModelName, seed = 0): tf.Sequential {
  let s = seed;
  const init = () => tf.initializers.glorotUniform({ seed: tfSeed(s++) });
  const conv = (filters: number, padding: "same" | "valid", inputShape?: number[]) =>
    tf.layers.conv2d({
      filters,
      kernelSize: 3,
      padding,
      activation: "relu",
      kernelInitializer: init(),
      ...(inputShape ? { inputShape } : {}),
    });
  const dense = (units: number, activation: "relu" | "linear") =>
    tf.layers.dense({ units, activation, kernelInitializer: init() });
  const model = tf.sequential({ name });
  if (name === "cifar_cnn") {
    model.add(conv(32, "same", BENCH_INPUT_SHAPE.cifar_cnn));
    model.add(conv(32, "valid"));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    model.add(conv(64, "same"));
    model.add(conv(64, "valid"));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    model.add(tf.layers.flatten());
    model.add(dense(512, "relu"));
    model.add(dense(10, "linear"));
  } else {
    model.add(conv(32, "valid", BENCH_INPUT_SHAPE.mnist_cnn));
    model.add(conv(64, "valid"));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    model.add(tf.layers.flatten());
    model.add(dense(128, "relu"));
    model.add(dense(10, "linear"));
  }
  return model;
}
