/**
 * GradNet's base network `cnn_cifar(h)` (spec: shared/papers/gradnet.md, from the authors'
 * Chainer `net.py`): conv 5×5 (padding 1) → ReLU → 2×2 max pool in ceil mode → conv 5×5
 * (padding 2) → ReLU → 2×2 max pool in ceil mode → linear head.
 *
 * Chainer's ceil-mode ("cover_all") 2×2/2 pooling equals TF's 'same' pooling: 11 → 6 with the
 * padded row never winning a max. On 3×24×24 input: 24 → 22 → 11 → 11 → 6, so the head sees
 * 6·6·h features; 130,378 parameters at h = 64. Weights are LeCun-normal (Chainer's default),
 * biases zero.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { tfSeed } from "../util/rng.ts";

/** Builds cnn_cifar(h) for an input of shape [height, width, channels]. */
export function cnnCifar(
  h: number,
  o: { inputShape?: [number, number, number]; classes?: number; seed?: number } = {},
): tf.Sequential {
  const inputShape = o.inputShape ?? [24, 24, 3];
  let seed = o.seed ?? 0;
  const init = () => tf.initializers.leCunNormal({ seed: tfSeed(seed++) });
  const m = tf.sequential({ name: `cnn_cifar_h${h}` });
  m.add(tf.layers.zeroPadding2d({ inputShape, padding: [[1, 1], [1, 1]], name: "pad0" }));
  m.add(
    tf.layers.conv2d({
      filters: h,
      kernelSize: 5,
      padding: "valid",
      activation: "relu",
      kernelInitializer: init(),
      name: "c0",
    }),
  );
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: "same", name: "pool0" }));
  m.add(
    tf.layers.conv2d({
      filters: h,
      kernelSize: 5,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(),
      name: "c1",
    }),
  );
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: "same", name: "pool1" }));
  m.add(tf.layers.flatten({ name: "flatten" }));
  m.add(tf.layers.dense({ units: o.classes ?? 10, kernelInitializer: init(), name: "l1" }));
  return m;
}

/** Number of trainable parameters of a model. */
export function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce(
    (s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1),
    0,
  );
}
