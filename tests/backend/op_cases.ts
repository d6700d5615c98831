/**
 * Operations the papers' networks need, each as a function of random inputs. Run on two backends,
 * the values and the gradients of Σ y·r (r fixed random) must agree: the `cpu` backend is the
 * reference implementation.
 */

import * as tf from "@tensorflow/tfjs";
import { Rng } from "../../lib/util/rng.ts";

export interface OpCase {
  name: string;
  shapes: number[][];
  /** which inputs get gradients checked (default: all) */
  gradInputs?: number[];
  /** input value distribution */
  kind?: "normal" | "positive" | "labels10";
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

type P = [number, number] | "same" | "valid" | [
  [number, number],
  [number, number],
  [number, number],
  [number, number],
];
const explicit = (
  t: number,
  b: number,
  l: number,
  r: number,
): P => [[0, 0], [t, b], [l, r], [0, 0]];

function convCase(
  name: string,
  x: number[],
  k: number,
  co: number,
  stride: number,
  pad: P,
): OpCase {
  return {
    name: `conv2d ${name}`,
    shapes: [x, [k, k, x[3], co]],
    f: (a, w) => tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, stride, pad as "same"),
  };
}

export const CONV_CASES: OpCase[] = [
  convCase("3x3 s1 same", [2, 7, 9, 5], 3, 6, 1, "same"),
  convCase("3x3 s2 valid (floor drops a row)", [3, 10, 9, 4], 3, 7, 2, "valid"),
  convCase("5x5 s2 same, TF asymmetric padding", [2, 11, 10, 3], 5, 8, 2, "same"),
  convCase("5x5 s2 same, even size", [2, 12, 12, 6], 5, 9, 2, "same"),
  convCase(
    "5x5 s1 explicit pad 1 (GradNet c0), batch 1",
    [1, 12, 12, 3],
    5,
    4,
    1,
    explicit(1, 1, 1, 1),
  ),
  convCase("5x5 s1 explicit pad 2 (GradNet c1)", [2, 11, 11, 6], 5, 5, 1, explicit(2, 2, 2, 2)),
  convCase("5x5 explicit asymmetric pad", [1, 8, 9, 6], 5, 5, 1, explicit(1, 2, 2, 0)),
  convCase("3x3 s2 explicit large pad", [2, 6, 7, 5], 3, 4, 2, explicit(3, 2, 2, 3)),
  // filter gradients that read whole kernel rows in place (few channels, no horizontal padding)
  convCase("5x5 s1 valid, 3 channels: kernel rows in place", [2, 12, 11, 3], 5, 16, 1, "valid"),
  convCase("5x5 s1 valid, 1 channel, 20 outputs", [3, 12, 12, 1], 5, 20, 1, "valid"),
  convCase("3x3 s1 padded above and below only", [2, 7, 8, 2], 3, 5, 1, explicit(1, 2, 0, 0)),
  convCase("5x5 s1 valid, 3 channels, split over pixel parts", [8, 24, 24, 3], 5, 16, 1, "valid"),
  convCase("1x1 s1", [2, 5, 5, 13], 1, 17, 1, "valid"),
  convCase("1x1 s2", [2, 7, 7, 8], 1, 9, 2, "valid"),
  convCase("3x3 odd sizes, 45 outputs (ragged tiles)", [3, 7, 5, 16], 3, 45, 1, "same"),
  convCase("3x3 300 input channels (channel blocks)", [1, 5, 4, 300], 3, 20, 1, "same"),
  convCase("3x3 1 channel batch 1", [1, 9, 9, 1], 3, 3, 1, "valid"),
];

export const DENSE_CASES: OpCase[] = [
  { name: "matMul", shapes: [[5, 7], [7, 3]], f: (a, b) => tf.matMul(a, b) },
  {
    name: "matMul transposeA",
    shapes: [[7, 5], [7, 3]],
    f: (a, b) => tf.matMul(a, b, true, false),
  },
  {
    name: "matMul transposeB",
    shapes: [[5, 7], [3, 7]],
    f: (a, b) => tf.matMul(a, b, false, true),
  },
  {
    name: "matMul both transposed",
    shapes: [[7, 5], [3, 7]],
    f: (a, b) => tf.matMul(a, b, true, true),
  },
  { name: "matMul batched", shapes: [[4, 5, 6], [4, 6, 3]], f: (a, b) => tf.matMul(a, b) },
  // TF.js's own gradient of a batch-broadcast matMul has the wrong shape (also on cpu): forward only.
  {
    name: "matMul broadcast batch (forward)",
    shapes: [[1, 5, 6], [3, 6, 2]],
    gradInputs: [],
    f: (a, b) => tf.matMul(a, b),
  },
  { name: "matMul long K", shapes: [[3, 600], [600, 40]], f: (a, b) => tf.matMul(a, b) },
  { name: "matMul wide N", shapes: [[2, 10], [10, 2100]], f: (a, b) => tf.matMul(a, b) },
  {
    name: "matMul thin: 3 rows, transposeB",
    shapes: [[3, 20], [40, 20]],
    f: (a, b) => tf.matMul(a, b, false, true),
  },
  {
    name: "matMul thin: 2 columns, both transposed",
    shapes: [[300, 7], [2, 300]],
    f: (a, b) => tf.matMul(a, b, true, true),
  },
  {
    name: "matMul thin: long reduction",
    shapes: [[600, 2], [600, 64]],
    f: (a, b) => tf.matMul(a, b, true, false),
  },
  // at most 32 columns: the native kernels read A in place instead of packing it (ragged row
  // tiles, K blocks, and the row-split threaded path with a shifted A)
  {
    name: "matMul 18 columns (A read in place)",
    shapes: [[50, 300], [300, 18]],
    f: (a, b) => tf.matMul(a, b),
  },
  {
    name: "matMul 18 columns, 2 threads' row shares (A read in place)",
    shapes: [[400, 150], [150, 18]],
    f: (a, b) => tf.matMul(a, b),
  },
  {
    name: "matMul transposeA 30 columns, long K (A read in place)",
    shapes: [[600, 13], [600, 30]],
    f: (a, b) => tf.matMul(a, b, true, false),
  },
  {
    name: "matMul transposeA 20 columns, 2 threads' row shares (A read in place)",
    shapes: [[200, 300], [200, 20]],
    f: (a, b) => tf.matMul(a, b, true, false),
  },
  {
    name: "fused matMul bias relu",
    shapes: [[9, 20], [20, 33], [33]],
    f: (a, b, c) =>
      tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias: c, activation: "relu" }),
  },
  {
    name: "fused conv2d bias relu",
    shapes: [[2, 8, 8, 4], [3, 3, 4, 6], [6]],
    f: (x, w, b) =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: "same",
        bias: b,
        activation: "relu",
      }),
  },
  {
    // 3×3, ≥ 16 channels a side: the native Winograd path, its epilogue on whole vectors of
    // channels and on the 4 left over, in whole and in partial (bottom, right) tiles
    name: "fused conv2d bias relu, Winograd-sized (forward)",
    shapes: [[2, 7, 5, 16], [3, 3, 16, 20], [20]],
    gradInputs: [],
    f: (x, w, b) =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: "same",
        bias: b,
        activation: "relu",
      }),
  },
  {
    // 37 channels: two whole vectors of the native epilogue and a partial one
    name: "fused conv2d bias leakyrelu (forward)",
    shapes: [[2, 6, 6, 4], [3, 3, 4, 37], [37]],
    gradInputs: [],
    f: (x, w, b) =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 2,
        pad: "same",
        bias: b,
        activation: "leakyrelu",
        leakyreluAlpha: 0.2,
      }),
  },
  {
    name: "fused conv2d bias relu6 (forward)",
    shapes: [[2, 6, 6, 4], [3, 3, 4, 37], [37]],
    gradInputs: [],
    f: (x, w, b) =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: "valid",
        bias: b,
        activation: "relu6",
      }),
  },
];

export const POOL_CASES: OpCase[] = [
  {
    name: "maxPool 2x2 s2 valid",
    shapes: [[2, 8, 8, 3]],
    f: (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, "valid"),
  },
  {
    name: "maxPool 2x2 s2 ceil mode (same) 11→6",
    shapes: [[2, 11, 11, 5]],
    f: (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, "same"),
  },
  {
    name: "maxPool 3x3 s2 same",
    shapes: [[2, 9, 10, 70]],
    f: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, "same"),
  },
  {
    // values rounded to halves, so that windows hold ties: the gradient goes to the first maximum
    name: "MaxPoolGrad with ties, ceil mode, 16 channels (the kernel itself)",
    shapes: [[2, 11, 11, 16], [2, 6, 6, 16]],
    gradInputs: [],
    f: (x, dy) => {
      const input = tf.round(tf.mul(x, 2));
      const output = tf.maxPool(input as tf.Tensor4D, 2, 2, "same");
      return tf.engine().runKernel("MaxPoolGrad", { dy, input, output }, {
        filterSize: 2,
        strides: 2,
        pad: "same",
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    },
  },
  {
    // windows that do not overlap and leave pixels between them (zeroed, not written by a window),
    // 16 channels in vectors and 4 in the scalar tail
    name: "maxPool 2x2 s3 valid, 20 channels (gaps between windows)",
    shapes: [[2, 8, 7, 20]],
    f: (x) => tf.maxPool(x as tf.Tensor4D, 2, 3, "valid"),
  },
  {
    name: "maxPool 3x3 s1 same, 32 channels (overlapping windows)",
    shapes: [[2, 6, 7, 32]],
    f: (x) => tf.maxPool(x as tf.Tensor4D, 3, 1, "same"),
  },
  {
    name: "maxPool 3x3 s1 same",
    shapes: [[1, 6, 6, 4]],
    f: (x) => tf.maxPool(x as tf.Tensor4D, 3, 1, "same"),
  },
  {
    name: "avgPool 2x2 s2 valid",
    shapes: [[2, 8, 8, 3]],
    f: (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, "valid"),
  },
  {
    // overlapping windows, and a last row and column no window reaches
    name: "avgPool 3x3 s2 valid on 8×8",
    shapes: [[2, 8, 8, 5]],
    f: (x) => tf.avgPool(x as tf.Tensor4D, 3, 2, "valid"),
  },
  {
    name: "avgPool 3x3 s2 same",
    shapes: [[2, 9, 9, 4]],
    f: (x) => tf.avgPool(x as tf.Tensor4D, 3, 2, "same"),
  },
  { name: "global average (mean over H,W)", shapes: [[3, 5, 5, 6]], f: (x) => tf.mean(x, [1, 2]) },
];

export const ELEMENTWISE_CASES: OpCase[] = [
  {
    name: "slice 4-D block",
    shapes: [[3, 5, 6, 4]],
    f: (x) => tf.slice(x, [1, 2, 0, 1], [2, 3, 5, 2]),
  },
  {
    name: "pad 4-D on channels (a slice's gradient), value 0.5",
    shapes: [[2, 3, 4, 5]],
    f: (x) => tf.pad(x, [[0, 0], [0, 0], [0, 0], [2, 3]], 0.5),
  },
  {
    name: "pad 3-D on a middle axis",
    shapes: [[3, 2, 4]],
    f: (x) => tf.pad(x, [[0, 0], [1, 2], [0, 0]]),
  },
  {
    name: "pad 2-D on two axes",
    shapes: [[3, 4]],
    f: (x) => tf.pad(x, [[1, 0], [0, 2]]),
  },
  {
    name: "pad 4-D on height and width (GradNet's input), value −1",
    shapes: [[2, 5, 4, 3]],
    f: (x) => tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]], -1),
  },
  {
    name: "pad every axis of a 3-D tensor",
    shapes: [[2, 3, 2]],
    f: (x) => tf.pad(x, [[1, 1], [0, 2], [3, 0]]),
  },
  { name: "slice 2-D rows (contiguous)", shapes: [[6, 7]], f: (x) => tf.slice(x, [2, 0], [3, 7]) },
  { name: "slice 1-D", shapes: [[9]], f: (x) => tf.slice(x, [4], [3]) },
  { name: "tile 4-D", shapes: [[2, 1, 3, 2]], f: (x) => tf.tile(x, [2, 3, 1, 2]) },
  { name: "tile 2-D", shapes: [[3, 4]], f: (x) => tf.tile(x, [1, 3]) },
  {
    name: "tile of one value (a mean's gradient)",
    shapes: [[1, 1, 1, 1]],
    f: (x) => tf.tile(x, [3, 4, 5, 7]),
  },
  {
    name: "tile, repeats of 1 between others",
    shapes: [[2, 3, 1]],
    f: (x) => tf.tile(x, [3, 1, 5]),
  },
  { name: "broadcastTo (Tile)", shapes: [[1, 3, 1]], f: (x) => tf.broadcastTo(x, [4, 3, 6]) },
  { name: "mean over every axis", shapes: [[4, 5, 6, 7]], f: (x) => tf.mean(x) },
  { name: "mean over leading axes", shapes: [[4, 5, 6]], f: (x) => tf.mean(x, [0, 1]) },
  { name: "mean over the last axis, kept", shapes: [[4, 5, 6]], f: (x) => tf.mean(x, -1, true) },
  { name: "sum over every axis", shapes: [[3, 50, 70]], f: (x) => tf.sum(x) },
  { name: "cast to its own dtype", shapes: [[3, 4]], f: (x) => tf.cast(x, "float32") },
  // element-wise on the native backend from 1,024 values: same shapes, or one value on the right
  { name: "add, same shapes", shapes: [[4, 9, 9, 8], [4, 9, 9, 8]], f: (a, b) => tf.add(a, b) },
  { name: "sub, same shapes", shapes: [[40, 33], [40, 33]], f: (a, b) => tf.sub(a, b) },
  { name: "mul, same shapes", shapes: [[4, 9, 9, 8], [4, 9, 9, 8]], f: (a, b) => tf.mul(a, b) },
  { name: "mul by one value", shapes: [[5, 17, 13], [1]], f: (a, b) => tf.mul(a, b) },
  { name: "add one value of rank 3", shapes: [[5, 17, 13], [1, 1, 1]], f: (a, b) => tf.add(a, b) },
  { name: "mul, broadcast rows (wasm)", shapes: [[40, 33], [33]], f: (a, b) => tf.mul(a, b) },
  {
    name: "mul of [n, D, m] by [n, 1, m] (a mask over gradient directions)",
    shapes: [[4, 10, 50], [4, 1, 50]],
    f: (a, b) => tf.mul(a, b),
  },
  {
    name: "step (ReLU's derivative), alpha 0.25",
    shapes: [[4, 9, 9, 8]],
    gradInputs: [],
    f: (x) => tf.step(x, 0.25),
  },
  {
    name: "concat 4-D on channels (GUNN segments), unequal widths",
    shapes: [[2, 3, 4, 2], [2, 3, 4, 5], [2, 3, 4, 1]],
    f: (a, b, c) => tf.concat([a, b, c], 3),
  },
  {
    name: "concat 3-D on a middle axis",
    shapes: [[3, 2, 4], [3, 5, 4]],
    f: (a, b) => tf.concat([a, b], 1),
  },
  { name: "concat 2-D on rows", shapes: [[2, 6], [3, 6]], f: (a, b) => tf.concat([a, b], 0) },
  {
    name: "split 4-D channels into equal segments (gradient: concat)",
    shapes: [[2, 3, 4, 6]],
    f: (x) => {
      const parts = tf.split(x, 3, 3);
      return tf.concat([parts[2].mul(2), parts[0], parts[1].square()], 3);
    },
  },
  {
    name: "split 3-D unequal sizes on a middle axis",
    shapes: [[2, 7, 3]],
    f: (x) => {
      const [a, b, c] = tf.split(x, [1, 4, 2], 1);
      return tf.concat([a.sum(1), b.mul(3).sum(1), c.neg().sum(1)], 1);
    },
  },
  {
    name: "sum over leading axes (bias grad)",
    shapes: [[4, 5, 6, 7]],
    f: (x) => tf.sum(x, [0, 1, 2]),
  },
  { name: "sum over trailing axes", shapes: [[4, 5, 6]], f: (x) => tf.sum(x, [1, 2]) },
  { name: "sum over a middle axis", shapes: [[4, 5, 6]], f: (x) => tf.sum(x, 1) },
  { name: "sum all, keepDims", shapes: [[3, 4]], f: (x) => tf.sum(x, undefined, true) },
  { name: "relu", shapes: [[3, 17]], f: (x) => tf.relu(x) },
  { name: "leakyRelu 0.2", shapes: [[3, 17]], f: (x) => tf.leakyRelu(x, 0.2) },
  { name: "tanh", shapes: [[3, 17]], f: (x) => tf.tanh(x) },
  { name: "x squared", shapes: [[3, 17]], f: (x) => tf.square(x) },
  { name: "sigmoid", shapes: [[3, 17]], f: (x) => tf.sigmoid(x) },
  { name: "dropout 0.3 (seeded)", shapes: [[4, 50]], f: (x) => tf.dropout(x, 0.3, undefined, 7) },
  {
    name: "batch norm, training mode (batch statistics)",
    shapes: [[4, 3, 3, 5], [5], [5]],
    f: (x, gamma, beta) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, beta, gamma, 1e-3);
    },
  },
  {
    name: "batch norm, inference mode (fixed statistics)",
    shapes: [[4, 3, 3, 5], [5], [5], [5], [5]],
    kind: "positive",
    f: (x, mean, variance, gamma, beta) => tf.batchNorm(x, mean, variance, beta, gamma, 1e-3),
  },
  {
    name: "softmax cross-entropy",
    shapes: [[6, 10], [6, 10]],
    gradInputs: [0],
    f: (logits, y) => tf.losses.softmaxCrossEntropy(tf.softmax(y.mul(3)), logits),
  },
  {
    name: "sigmoid cross-entropy",
    shapes: [[8, 1], [8, 1]],
    gradInputs: [0],
    f: (logits, y) => tf.losses.sigmoidCrossEntropy(y.greater(0).toFloat(), logits),
  },
];

export const ALL_CASES = [...CONV_CASES, ...DENSE_CASES, ...POOL_CASES, ...ELEMENTWISE_CASES];

/** Values and input gradients of one case on the current backend. */
export async function runCase(
  c: OpCase,
  seed: number,
): Promise<{ y: Float32Array; grads: Float32Array[] }> {
  let outs: tf.Tensor[] = [];
  try {
    outs = computeCase(c, seed);
    // Asynchronous reads: WebGPU in Deno cannot read synchronously.
    const values = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
    return { y: values[0], grads: values.slice(1) };
  } catch (e) {
    throw new Error(`${c.name} on ${tf.getBackend()}: ${(e as Error).message}`);
  } finally {
    tf.dispose(outs);
  }
}

function computeCase(c: OpCase, seed: number): tf.Tensor[] {
  const rng = new Rng(seed);
  const data = c.shapes.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    return c.kind === "positive" ? rng.uniforms(n, 0.5, 2) : rng.normals(n);
  });
  return tf.tidy(() => {
    const xs = data.map((d, i) => tf.tensor(d, c.shapes[i]));
    const y = c.f(...xs);
    const r = tf.tensor(rng.normals(y.size), y.shape);
    const which = c.gradInputs ?? xs.map((_, i) => i);
    const grads = which.length === 0 ? [] : tf.grads((...ins: tf.Tensor[]) => {
      const all = xs.map((x, i) => (which.includes(i) ? ins[which.indexOf(i)] : x));
      return c.f(...all).mul(r).sum();
    })(which.map((i) => xs[i]));
    return [y, ...grads];
  });
}

/** max |a − b| / max |b| (0 when both are all zero). */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}
