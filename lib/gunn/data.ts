/**
 * The GUNN training pipeline (spec: shared/papers/gunn.md §2, the authors' `transforms.lua`):
 * per-channel normalisation on the 0–255 scale, horizontal flip (p = ½), a random crop from the
 * image zero-padded by an eighth of its side (4 px at 32×32), and "Jigsaw" — a cyclic shift of the
 * whole image with probability ⅔. Test images are normalised only.
 *
 * For CPU runs the images can be shrunk first by averaging k×k blocks (32×32 → 16×16).
 *
 * @module
 */

import { UserError } from "../util/errors.ts";
import type { Tensor4D } from "../util/tf_types.ts";
import { type ImageDataset, imageSize } from "../data/dataset.ts";
import {
  cyclicShift,
  hostImages,
  normalizeChannels,
  randomCrop,
  randomFlip,
  toTensor,
} from "../data/augment.ts";
import type { Rng } from "../util/rng.ts";

/** CIFAR-10 channel means and standard deviations on 0–255 (the authors' cifar10.lua). */
export const CIFAR_MEAN = [125.3, 123.0, 113.9];
/** CIFAR-10 channel standard deviations on 0–255. */
export const CIFAR_STD = [63.0, 62.1, 66.7];
/** CIFAR-100's (the authors' cifar100.lua). */
export const CIFAR100_MEAN = [129.3, 124.1, 112.4];
export const CIFAR100_STD = [68.2, 65.4, 70.4];

/** How images become network inputs. */
export interface GunnView {
  /** channel means subtracted (0–255 scale) */
  mean: number[];
  /** channel standard deviations divided by */
  std: number[];
  /** mirror left–right in training (off for digits) */
  flip: boolean;
  /** zero padding before the random crop, in pixels (0: no crop) */
  pad: number;
  /** the cyclic-shift augmentation */
  jigsaw: boolean;
}

/**
 * The dataset with every image shrunk by averaging `factor`×`factor` blocks (rounded to 0–255).
 * @throws RangeError when the sides are not multiples of `factor`
 */
export function downsample(ds: ImageDataset, factor: number): ImageDataset {
  if (factor === 1) return ds;
  if (ds.height % factor || ds.width % factor) {
    throw new RangeError(`${ds.height}×${ds.width} images do not shrink by ${factor}`);
  }
  const h = ds.height / factor, w = ds.width / factor, c = ds.channels;
  const src = imageSize(ds), dst = h * w * c;
  const out = new Uint8Array(ds.n * dst);
  const area = factor * factor;
  for (let i = 0; i < ds.n; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) {
          let s = 0;
          for (let dy = 0; dy < factor; dy++) {
            for (let dx = 0; dx < factor; dx++) {
              s += ds.images[i * src + ((y * factor + dy) * ds.width + x * factor + dx) * c + k];
            }
          }
          out[i * dst + (y * w + x) * c + k] = Math.round(s / area);
        }
      }
    }
  }
  return { ...ds, images: out, height: h, width: w };
}

/** Per-channel mean and standard deviation of a dataset's pixels (0–255). */
export function channelStats(ds: ImageDataset): { mean: number[]; std: number[] } {
  const c = ds.channels, s = new Float64Array(c), s2 = new Float64Array(c);
  for (let j = 0; j < ds.images.length; j++) {
    const v = ds.images[j];
    s[j % c] += v;
    s2[j % c] += v * v;
  }
  const count = ds.images.length / c;
  const mean = Array.from(s, (v) => v / count);
  const std = Array.from(s2, (v, k) => Math.sqrt(Math.max(v / count - mean[k] ** 2, 1e-12)));
  return { mean, std };
}

/** A training batch: normalise, then flip, pad-crop and Jigsaw as `view` says (draws from `rng`). */
export function gunnTrainBatch(
  ds: ImageDataset,
  idx: ArrayLike<number>,
  rng: Rng,
  view: GunnView,
): Tensor4D {
  // Normalising first makes the crop's zero padding the mean colour, as in the authors' code.
  let b = normalizeChannels(hostImages(ds, idx, 1), view.mean, view.std);
  if (view.flip) b = randomFlip(b, rng);
  if (view.pad > 0) b = randomCrop(b, [b.h, b.w], rng, view.pad);
  if (view.jigsaw) b = cyclicShift(b, rng);
  return toTensor(b);
}

/** A test batch: normalisation only. */
export function gunnTestBatch(
  ds: ImageDataset,
  idx: ArrayLike<number>,
  view: GunnView,
): Tensor4D {
  return toTensor(normalizeChannels(hostImages(ds, idx, 1), view.mean, view.std));
}

/**
 * `ds` at `side`×`side` pixels by averaging whole blocks (unchanged for side 0 or its own size);
 * a side that is not a whole fraction of the images' is refused in one line.
 */
export function shrink(ds: ImageDataset, side: number): ImageDataset {
  if (side <= 0 || side === ds.height) return ds;
  const f = ds.height / side;
  if (!Number.isInteger(f) || ds.width / f !== Math.round(ds.width / f)) {
    throw new UserError(
      `--image-size ${side}: ${ds.height}×${ds.width} images shrink only by whole factors (e.g. ${
        ds.height / 2
      })`,
    );
  }
  return downsample(ds, f);
}

/**
 * How a dataset is shown to GUNN: the authors' channel statistics for CIFAR-10/100, the training
 * set's own otherwise; flips for natural images; padding ⅛ of the side; Jigsaw as asked.
 */
export function viewOf(
  cfg: { dataset: string; jigsaw: boolean },
  train: ImageDataset,
): GunnView {
  const stats = cfg.dataset === "cifar10"
    ? { mean: CIFAR_MEAN, std: CIFAR_STD }
    : cfg.dataset === "cifar100"
    ? { mean: CIFAR100_MEAN, std: CIFAR100_STD }
    : channelStats(train);
  return {
    ...stats,
    flip: cfg.dataset !== "mnist" && cfg.dataset !== "fashion",
    pad: Math.max(1, Math.round(train.height / 8)),
    jigsaw: cfg.jigsaw,
  };
}
