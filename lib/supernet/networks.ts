/**
 * SuperNet's two networks (spec: shared/papers/supernet.md §2, from `victorygod/SuperNet`).
 *
 * The classifier C has no weights of its own: it runs on a list of tensors —
 * four 5×5 stride-2 convolutions with TF-style 'same' padding, bias and leaky ReLU 0.2, then three
 * linear layers without activation (64 → 100 → 100 → 1 logit). The generator G maps a task vector
 * z (100 numbers) to every one of those tensors: one dense head per tensor, then tanh (|w| < 1).
 * Gradients of C's loss flow through the generated weights into G and, when it is trainable, z.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor4D, Variable } from "../util/tf_types.ts";
import { variableFrom } from "../util/tensors.ts";
import { Rng } from "../util/rng.ts";

/** One tensor of the classifier. */
export interface TensorSpec {
  /** tensor name, e.g. "conv1/kernel" */
  name: string;
  /** tensor shape */
  shape: number[];
}

/** Output sides of the four stride-2 'same' convolutions: ⌈h/2⌉ each time. */
function sides(h: number): number {
  for (let i = 0; i < 4; i++) h = Math.ceil(h / 2);
  return h;
}

/**
 * The classifier's tensors for inputs [h, w, c]: 14 for any input; 37,165 numbers for 32×32×3
 * (36,365 for 28×28×1). Kernels are [kh, kw, in, out] and [in, out].
 */
export function classifierSpec(inputShape: [number, number, number], width = 16): TensorSpec[] {
  const [h, w, c] = inputShape;
  const flat = sides(h) * sides(w) * width;
  const spec: TensorSpec[] = [];
  let cin = c;
  for (let i = 1; i <= 4; i++) {
    spec.push({ name: `conv${i}/kernel`, shape: [5, 5, cin, width] });
    spec.push({ name: `conv${i}/bias`, shape: [width] });
    cin = width;
  }
  spec.push({ name: "fc1/kernel", shape: [flat, 100] }, { name: "fc1/bias", shape: [100] });
  spec.push({ name: "fc2/kernel", shape: [100, 100] }, { name: "fc2/bias", shape: [100] });
  spec.push({ name: "out/kernel", shape: [100, 1] }, { name: "out/bias", shape: [1] });
  return spec;
}

/** Numbers in a list of tensor specs. */
export function specSize(spec: TensorSpec[]): number {
  return spec.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** C's logits [N] for images x [N, h, w, c] on the weights `w` (in {@link classifierSpec}'s order). */
export function classifierLogits(x: Tensor4D, w: Tensor[]): Tensor1D {
  return tf.tidy(() => {
    let h: Tensor = x;
    for (let i = 0; i < 4; i++) {
      const conv = tf.conv2d(h as Tensor4D, w[2 * i] as Tensor4D, 2, "same");
      h = tf.leakyRelu(tf.add(conv, w[2 * i + 1]), 0.2);
    }
    h = h.reshape([x.shape[0], -1]); // HWC order, as TF's flatten
    for (let j = 0; j < 3; j++) {
      h = tf.add(tf.matMul(h as Tensor2D, w[8 + 2 * j] as Tensor2D), w[9 + 2 * j]);
    }
    return h.reshape([x.shape[0]]) as Tensor1D;
  });
}

/** Mean sigmoid cross-entropy of logits against 0/1 labels. */
export function binaryLoss(logits: Tensor1D, labels: Tensor1D): Scalar {
  return tf.losses.sigmoidCrossEntropy(labels, logits) as Scalar;
}

function glorot(rng: Rng, fanIn: number, fanOut: number, n: number): Float32Array {
  const lim = Math.sqrt(6 / (fanIn + fanOut));
  return Float32Array.from({ length: n }, () => rng.uniform(-lim, lim));
}

/** Ordinary (not generated) weights for C: Glorot-uniform kernels, zero biases — the scratch arm. */
export function initClassifierWeights(spec: TensorSpec[], seed: number): Variable[] {
  const rng = new Rng(seed);
  return spec.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.length === 1) return variableFrom(tf.zeros(t.shape), true);
    const rf = t.shape.length === 4 ? t.shape[0] * t.shape[1] : 1;
    const fanIn = rf * t.shape.at(-2)!, fanOut = rf * t.shape.at(-1)!;
    return variableFrom(tf.tensor(glorot(rng, fanIn, fanOut, n), t.shape), true);
  });
}

/**
 * The generator: per classifier tensor, a dense head z → |T| (Glorot-uniform kernel [zDim, |T|],
 * zero bias) followed by tanh.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 * import { classifierSpec, Generator } from "./networks.ts";
 * import { oneHotZ } from "./train.ts";
 * const spec = classifierSpec([8, 8, 1], 4); // a binary CNN for 8×8 grey images
 * const G = new Generator(spec, 3, 0);
 * const [a, b] = [G.generate(oneHotZ(0, 3)), G.generate(oneHotZ(1, 3))];
 * // one tensor per classifier weight, in tanh's range; two tasks, two different networks
 * assert.deepEqual(a.map((t) => t.shape), spec.map((t) => t.shape));
 * assert.ok(a.every((t) => tf.max(tf.abs(t)).dataSync()[0] <= 1));
 * assert.ok(tf.max(tf.abs(tf.sub(a[0], b[0]))).dataSync()[0] > 0);
 * G.dispose();
 * ```
 */
export class Generator {
  /** one dense head per classifier tensor: z → its kernel */
  readonly kernels: Variable[];
  /** and its bias */
  readonly biases: Variable[];

  /** A generator for the classifier tensors `spec` from z of length `zDim`; weights drawn from `seed`. */
  constructor(readonly spec: TensorSpec[], readonly zDim: number, seed: number) {
    const rng = new Rng(seed);
    this.kernels = spec.map((t) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      return variableFrom(tf.tensor2d(glorot(rng, zDim, n, zDim * n), [zDim, n]), true);
    });
    this.biases = spec.map((t) =>
      variableFrom(tf.zeros([t.shape.reduce((a, b) => a * b, 1)]), true)
    );
  }

  /** Every trainable variable (kernels, then biases). */
  get variables(): Variable[] {
    return [...this.kernels, ...this.biases];
  }

  /** Trainable parameters: (zDim + 1) per generated number. */
  paramCount(): number {
    return this.variables.reduce((s, v) => s + v.size, 0);
  }

  /** The classifier's tensors for task vector z [zDim]. */
  generate(z: Tensor1D): Tensor[] {
    return tf.tidy(() => {
      const z2 = z.reshape([1, this.zDim]) as Tensor2D;
      return this.spec.map((t, i) =>
        tf.tanh(tf.add(tf.matMul(z2, this.kernels[i] as Tensor2D), this.biases[i])).reshape(
          t.shape,
        )
      );
    });
  }

  /** A 64-bit-ish fingerprint of every weight (sum and position-weighted sum, in float64). */
  async checksum(): Promise<string> {
    let s = 0, p = 0, k = 1;
    for (const v of this.variables) {
      for (const x of await v.data()) {
        s += x;
        p += x * (k++ % 9973);
      }
    }
    return `${s.toPrecision(17)}/${p.toPrecision(17)}`;
  }

  /** Copies of the weights, to restore after an arm that trains G. */
  snapshot(): Promise<Float32Array[]> {
    return Promise.all(this.variables.map(async (v) => (await v.data()).slice() as Float32Array));
  }

  /** Sets every weight to a {@link Generator.snapshot} copy. */
  restore(s: Float32Array[]): void {
    this.variables.forEach((v, i) => {
      const t = tf.tensor(s[i], v.shape);
      v.assign(t);
      t.dispose(); // assign copies: the temporary must go (it leaked one tensor per weight)
    });
  }

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(this.variables);
  }
}
