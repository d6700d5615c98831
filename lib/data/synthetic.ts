/**
 * Synthetic datasets from a seeded PRNG: Gaussian blobs, the 2-D shapes of the last-layer-SVM
 * paper (band, quarter annuli, moons), and small class-patterned images for tests.
 *
 * @module
 */

import { Rng } from "../util/rng.ts";
import type { ImageDataset } from "./dataset.ts";

/** Points with labels: x is [n, d] row-major. */
export interface PointSet {
  /** coordinates [n, d], row-major */
  x: Float32Array;
  /** class of each point */
  y: Int32Array;
  /** number of points */
  n: number;
  /** dimension */
  d: number;
}

function collect(points: number[][], labels: number[], d: number): PointSet {
  const x = new Float32Array(points.length * d);
  points.forEach((p, i) => x.set(p, i * d));
  return { x, y: Int32Array.from(labels), n: points.length, d };
}

/**
 * Isotropic Gaussian blobs, one per centre, points interleaved in a seeded random order.
 *
 * @param o.centers one d-dimensional centre per class
 * @param o.sigma standard deviation (one for all, or one per class)
 * @param o.counts points per class (one for all, or one per class)
 */
export function gaussianBlobs(o: {
  centers: number[][];
  sigma: number | number[];
  counts: number | number[];
  seed: number;
}): PointSet {
  const rng = new Rng(o.seed);
  const d = o.centers[0].length;
  const pts: number[][] = [], lab: number[] = [];
  o.centers.forEach((c, k) => {
    if (c.length !== d) throw new RangeError(`centre ${k} has ${c.length} dims, expected ${d}`);
    const n = Array.isArray(o.counts) ? o.counts[k] : o.counts;
    const s = Array.isArray(o.sigma) ? o.sigma[k] : o.sigma;
    for (let i = 0; i < n; i++) {
      pts.push(c.map((v) => v + s * rng.normal()));
      lab.push(k);
    }
  });
  const order = rng.permutation(pts.length);
  return collect(Array.from(order, (i) => pts[i]), Array.from(order, (i) => lab[i]), d);
}

/** The unit square minus the band |x1 + x2 − 1| < halfWidth; label 1 above the band. */
export function band(o: { n: number; halfWidth?: number; seed: number }): PointSet {
  const rng = new Rng(o.seed);
  const hw = o.halfWidth ?? 0.1;
  const pts: number[][] = [], lab: number[] = [];
  while (pts.length < o.n) {
    const p = [rng.float(), rng.float()];
    const s = p[0] + p[1] - 1;
    if (Math.abs(s) < hw) continue;
    pts.push(p);
    lab.push(s > 0 ? 1 : 0);
  }
  return collect(pts, lab, 2);
}

/**
 * Two quarter annuli around the origin: uniform draws in [0, outer]², kept when their radius lies
 * in `inner` (class 0) or `outer` (class 1) — the simulated setting of the paper's code
 * (radii [0.1, 200] and [300, 400], 5,000 and 15,000 draws).
 */
export function quarterAnnuli(o: {
  draws0?: number;
  draws1?: number;
  inner?: [number, number];
  outer?: [number, number];
  seed: number;
}): PointSet {
  const rng = new Rng(o.seed);
  const inner = o.inner ?? [0.1, 200], outer = o.outer ?? [300, 400];
  const side = outer[1];
  const pts: number[][] = [], lab: number[] = [];
  const draw = (n: number, [lo, hi]: [number, number], label: number) => {
    for (let i = 0; i < n; i++) {
      const p = [rng.uniform(0, side), rng.uniform(0, side)];
      const r = Math.hypot(p[0], p[1]);
      if (r >= lo && r <= hi) {
        pts.push(p);
        lab.push(label);
      }
    }
  };
  draw(o.draws0 ?? 5000, inner, 0);
  draw(o.draws1 ?? 15000, outer, 1);
  const order = rng.permutation(pts.length);
  return collect(Array.from(order, (i) => pts[i]), Array.from(order, (i) => lab[i]), 2);
}

/** Two interleaving half circles (as scikit-learn's make_moons), with Gaussian noise. */
export function moons(o: { n: number; noise?: number; seed: number }): PointSet {
  const rng = new Rng(o.seed);
  const noise = o.noise ?? 0.1;
  const n0 = Math.floor(o.n / 2), n1 = o.n - n0;
  const pts: number[][] = [], lab: number[] = [];
  for (let i = 0; i < n0; i++) {
    const t = (Math.PI * i) / Math.max(n0 - 1, 1);
    pts.push([Math.cos(t) + noise * rng.normal(), Math.sin(t) + noise * rng.normal()]);
    lab.push(0);
  }
  for (let i = 0; i < n1; i++) {
    const t = (Math.PI * i) / Math.max(n1 - 1, 1);
    pts.push([1 - Math.cos(t) + noise * rng.normal(), 0.5 - Math.sin(t) + noise * rng.normal()]);
    lab.push(1);
  }
  const order = rng.permutation(pts.length);
  return collect(Array.from(order, (i) => pts[i]), Array.from(order, (i) => lab[i]), 2);
}

/**
 * Small images whose class is learnable: each class has a random template (smooth blobs), an
 * image is its class template plus noise, clipped to 0–255. For tests and smoke runs.
 */
export function syntheticImages(o: {
  n: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  seed: number;
  noise?: number;
  name?: string;
}): ImageDataset {
  const rng = new Rng(o.seed);
  const size = o.height * o.width * o.channels;
  const templates = Array.from({ length: o.numClasses }, () => {
    const t = new Float32Array(size);
    for (let b = 0; b < 3; b++) {
      const cy = rng.uniform(0, o.height), cx = rng.uniform(0, o.width);
      const r = rng.uniform(1, Math.max(o.height, o.width) / 2);
      const amp = rng.uniform(-120, 120);
      const ch = rng.int(o.channels);
      for (let y = 0; y < o.height; y++) {
        for (let x = 0; x < o.width; x++) {
          const v = amp * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r));
          t[(y * o.width + x) * o.channels + ch] += v;
        }
      }
    }
    return t;
  });
  const images = new Uint8Array(o.n * size);
  const labels = new Int32Array(o.n);
  const noise = o.noise ?? 30;
  for (let i = 0; i < o.n; i++) {
    const k = i % o.numClasses;
    labels[i] = k;
    for (let j = 0; j < size; j++) {
      const v = 128 + templates[k][j] + noise * rng.normal();
      images[i * size + j] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return {
    name: o.name ?? "synthetic",
    images,
    labels,
    n: o.n,
    height: o.height,
    width: o.width,
    channels: o.channels,
    numClasses: o.numClasses,
    classNames: Array.from({ length: o.numClasses }, (_, k) => `class ${k}`),
  };
}
