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
import { variableFrom } from "../util/tensors.ts";
import { Rng } from "../util/rng.ts";

/** One tensor of the classifier. */
export interface TensorSpec {
  name: string;
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
export function classifierLogits(x: tf.Tensor4D, w: tf.Tensor[]): tf.Tensor1D {
  return tf.tidy(() => {
    let h: tf.Tensor = x;
    for (let i = 0; i < 4; i++) {
      const conv = tf.conv2d(h as tf.Tensor4D, w[2 * i] as tf.Tensor4D, 2, "same");
      h = tf.leakyRelu(tf.add(conv, w[2 * i + 1]), 0.2);
    }
    h = h.reshape([x.shape[0], -1]); // HWC order, as TF's flatten
    for (let j = 0; j < 3; j++) {
      h = tf.add(tf.matMul(h as tf.Tensor2D, w[8 + 2 * j] as tf.Tensor2D), w[9 + 2 * j]);
    }
    return h.reshape([x.shape[0]]) as tf.Tensor1D;
  });
}

/** Mean sigmoid cross-entropy of logits against 0/1 labels. */
export function binaryLoss(logits: tf.Tensor1D, labels: tf.Tensor1D): tf.Scalar {
  return tf.losses.sigmoidCrossEntropy(labels, logits) as tf.Scalar;
}

function glorot(rng: Rng, fanIn: number, fanOut: number, n: number): Float32Array {
  const lim = Math.sqrt(6 / (fanIn + fanOut));
  return Float32Array.from({ length: n }, () => rng.uniform(-lim, lim));
}

/** Ordinary (not generated) weights for C: Glorot-uniform kernels, zero biases — the scratch arm. */
export function initClassifierWeights(spec: TensorSpec[], seed: number): tf.Variable[] {
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
 */
export class Generator {
  readonly kernels: tf.Variable[];
  readonly biases: tf.Variable[];

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
  get variables(): tf.Variable[] {
    return [...this.kernels, ...this.biases];
  }

  /** Trainable parameters: (zDim + 1) per generated number. */
  paramCount(): number {
    return this.variables.reduce((s, v) => s + v.size, 0);
  }

  /** The classifier's tensors for task vector z [zDim]. */
  generate(z: tf.Tensor1D): tf.Tensor[] {
    return tf.tidy(() => {
      const z2 = z.reshape([1, this.zDim]) as tf.Tensor2D;
      return this.spec.map((t, i) =>
        tf.tanh(tf.add(tf.matMul(z2, this.kernels[i] as tf.Tensor2D), this.biases[i])).reshape(
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

  restore(s: Float32Array[]): void {
    this.variables.forEach((v, i) => {
      const t = tf.tensor(s[i], v.shape);
      v.assign(t);
      t.dispose(); // assign copies: the temporary must go (it leaked one tensor per weight)
    });
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}
