/**
 * GradNet's image pipeline (spec §2): training views get a random crop, a horizontal flip and a
 * random per-channel contrast, test views a centre crop; both are then standardised per image.
 * For MNIST-like data (no augmentation in the spec) only the standardisation applies.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ImageDataset } from "../data/dataset.ts";
import {
  centerCrop,
  hostImages,
  perImageStandardize,
  randomContrast,
  randomCrop,
  randomFlip,
} from "../data/augment.ts";
import type { Rng } from "../util/rng.ts";

/** Augmentation policy. */
export type AugmentPolicy = "none" | "cifar";

/** Input shape [H, W, C] the base network sees. */
export function viewShape(
  ds: ImageDataset,
  policy: AugmentPolicy,
  crop: number,
): [number, number, number] {
  return policy === "cifar" ? [crop, crop, ds.channels] : [ds.height, ds.width, ds.channels];
}

/** A training view of the images at `idx` (augmentation drawn from `rng`). */
export function trainView(
  ds: ImageDataset,
  idx: ArrayLike<number>,
  rng: Rng,
  o: { policy: AugmentPolicy; crop: number },
): tf.Tensor4D {
  let b = hostImages(ds, idx);
  if (o.policy === "cifar") {
    b = randomCrop(b, [o.crop, o.crop], rng);
    b = randomFlip(b, rng);
    b = randomContrast(b, rng, 0.2, 1.8);
  }
  b = perImageStandardize(b);
  return tf.tensor4d(b.data, [b.n, b.h, b.w, b.c]);
}

/** A test view of the images at `idx`. */
export function testView(
  ds: ImageDataset,
  idx: ArrayLike<number>,
  o: { policy: AugmentPolicy; crop: number },
): tf.Tensor4D {
  let b = hostImages(ds, idx);
  if (o.policy === "cifar") b = centerCrop(b, [o.crop, o.crop]);
  b = perImageStandardize(b);
  return tf.tensor4d(b.data, [b.n, b.h, b.w, b.c]);
}
