/**
 * Seeded augmentation of image batches (NHWC float32): random crop (from zero padding, or to a
 * smaller size), centre crop, horizontal flip, per-channel contrast, per-image standardisation,
 * per-channel mean/std normalisation and the cyclic shift ("Jigsaw") of the GUNN code.
 *
 * The work is done on the host array of a batch (`HostBatch`), where it costs nothing next to the
 * network; {@link augmentTensor} applies a pipeline to a tensor.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor4D } from "../util/tf_types.ts";
import type { Rng } from "../util/rng.ts";
import { type ImageDataset, imageValues } from "./dataset.ts";

/** A batch on the host: `data` is [n, h, w, c] row-major. */
export interface HostBatch {
  /** pixel values, [n, h, w, c] row-major */
  data: Float32Array;
  /** images */
  n: number;
  /** height */
  h: number;
  /** width */
  w: number;
  /** channels */
  c: number;
}

/** Images `idx` of a dataset as a host batch, pixel values times `scale`. */
export function hostImages(ds: ImageDataset, idx: ArrayLike<number>, scale = 1 / 255): HostBatch {
  return {
    data: imageValues(ds, idx, scale),
    n: idx.length,
    h: ds.height,
    w: ds.width,
    c: ds.channels,
  };
}

/** The host copy of a 4-D tensor. */
export async function fromTensor(t: Tensor4D): Promise<HostBatch> {
  const [n, h, w, c] = t.shape;
  return { data: (await t.data()) as Float32Array, n, h, w, c };
}

/** A tensor of a host batch (the caller disposes it). */
export function toTensor(b: HostBatch): Tensor4D {
  return tf.tensor4d(b.data, [b.n, b.h, b.w, b.c]);
}

function crops(
  b: HostBatch,
  oh: number,
  ow: number,
  offsets: [number, number][],
  pad: number,
): HostBatch {
  const out = new Float32Array(b.n * oh * ow * b.c);
  for (let i = 0; i < b.n; i++) {
    const [dy, dx] = offsets[i];
    for (let y = 0; y < oh; y++) {
      const sy = y + dy - pad;
      for (let x = 0; x < ow; x++) {
        const sx = x + dx - pad;
        const o = ((i * oh + y) * ow + x) * b.c;
        if (sy < 0 || sy >= b.h || sx < 0 || sx >= b.w) continue; // zero padding
        const s = ((i * b.h + sy) * b.w + sx) * b.c;
        for (let k = 0; k < b.c; k++) out[o + k] = b.data[s + k];
      }
    }
  }
  return { data: out, n: b.n, h: oh, w: ow, c: b.c };
}

/**
 * Random crop of size [oh, ow] from each image zero-padded by `pad` on every side; offsets are
 * uniform over all positions (0..h+2·pad−oh), drawn per image.
 */
export function randomCrop(b: HostBatch, size: [number, number], rng: Rng, pad = 0): HostBatch {
  const [oh, ow] = size;
  const ry = b.h + 2 * pad - oh, rx = b.w + 2 * pad - ow;
  if (ry < 0 || rx < 0) throw new RangeError(`crop ${oh}×${ow} larger than padded ${b.h}×${b.w}`);
  const off = Array.from(
    { length: b.n },
    () => [rng.int(ry + 1), rng.int(rx + 1)] as [number, number],
  );
  return crops(b, oh, ow, off, pad);
}

/** Centre crop of size [oh, ow] (offset floor((h−oh)/2)). */
export function centerCrop(b: HostBatch, size: [number, number]): HostBatch {
  const [oh, ow] = size;
  const off: [number, number] = [Math.floor((b.h - oh) / 2), Math.floor((b.w - ow) / 2)];
  return crops(b, oh, ow, Array(b.n).fill(off), 0);
}

/** Mirrors each image left–right with probability `p`. */
export function randomFlip(b: HostBatch, rng: Rng, p = 0.5): HostBatch {
  const out = b.data.slice();
  for (let i = 0; i < b.n; i++) {
    if (rng.float() >= p) continue;
    for (let y = 0; y < b.h; y++) {
      for (let x = 0; x < b.w; x++) {
        const s = ((i * b.h + y) * b.w + (b.w - 1 - x)) * b.c;
        const o = ((i * b.h + y) * b.w + x) * b.c;
        for (let k = 0; k < b.c; k++) out[o + k] = b.data[s + k];
      }
    }
  }
  return { ...b, data: out };
}

/** Per image and channel: (x − mean_c)·f + mean_c with f ~ U[lo, hi) (GradNet: 0.2, 1.8). */
export function randomContrast(b: HostBatch, rng: Rng, lo: number, hi: number): HostBatch {
  const out = b.data.slice();
  const px = b.h * b.w;
  for (let i = 0; i < b.n; i++) {
    for (let k = 0; k < b.c; k++) {
      const f = rng.uniform(lo, hi);
      let mean = 0;
      for (let p = 0; p < px; p++) mean += b.data[(i * px + p) * b.c + k];
      mean /= px;
      for (let p = 0; p < px; p++) {
        const j = (i * px + p) * b.c + k;
        out[j] = (b.data[j] - mean) * f + mean;
      }
    }
  }
  return { ...b, data: out };
}

/** (x − mean) / max(std, 1/√N) over each whole image (TensorFlow's per_image_standardization). */
export function perImageStandardize(b: HostBatch): HostBatch {
  const out = new Float32Array(b.data.length);
  const size = b.h * b.w * b.c;
  const minStd = 1 / Math.sqrt(size);
  for (let i = 0; i < b.n; i++) {
    let s = 0, s2 = 0;
    for (let j = i * size; j < (i + 1) * size; j++) {
      s += b.data[j];
      s2 += b.data[j] * b.data[j];
    }
    const mean = s / size;
    const std = Math.sqrt(Math.max(s2 / size - mean * mean, 0));
    const d = Math.max(std, minStd);
    for (let j = i * size; j < (i + 1) * size; j++) out[j] = (b.data[j] - mean) / d;
  }
  return { ...b, data: out };
}

/** (x − mean[c]) / std[c] per channel. */
export function normalizeChannels(b: HostBatch, mean: number[], std: number[]): HostBatch {
  if (mean.length !== b.c || std.length !== b.c) {
    throw new RangeError(
      `normalizeChannels: ${b.c} channels, got ${mean.length} means, ${std.length} stds`,
    );
  }
  const out = new Float32Array(b.data.length);
  for (let j = 0; j < b.data.length; j++) {
    const k = j % b.c;
    out[j] = (b.data[j] - mean[k]) / std[k];
  }
  return { ...b, data: out };
}

/**
 * Cyclic shift ("Jigsaw" in the GUNN code): with probability `p` an image is rolled by d ~ U{1..W}
 * columns (or, with equal chance, by d ~ U{1..H} rows), wrapping around.
 */
export function cyclicShift(b: HostBatch, rng: Rng, p = 2 / 3): HostBatch {
  const out = b.data.slice();
  for (let i = 0; i < b.n; i++) {
    if (rng.float() >= p) continue;
    const alongWidth = rng.float() < 0.5;
    const d = 1 + rng.int(alongWidth ? b.w : b.h);
    for (let y = 0; y < b.h; y++) {
      for (let x = 0; x < b.w; x++) {
        const sy = alongWidth ? y : (y - d + b.h * 2) % b.h;
        const sx = alongWidth ? (x - d + b.w * 2) % b.w : x;
        const o = ((i * b.h + y) * b.w + x) * b.c;
        const s = ((i * b.h + sy) * b.w + sx) * b.c;
        for (let k = 0; k < b.c; k++) out[o + k] = b.data[s + k];
      }
    }
  }
  return { ...b, data: out };
}

/** Applies host-side augmentations to a tensor batch; returns a new tensor (caller disposes). */
export async function augmentTensor(
  x: Tensor4D,
  pipeline: (b: HostBatch) => HostBatch,
): Promise<Tensor4D> {
  return toTensor(pipeline(await fromTensor(x)));
}
