/**
 * GradNet (spec: shared/papers/gradnet.md): a block-diagonal two-layer ReLU network on gradient
 * vectors. The input row is cut into blocks — one per base-network layer — and block i feeds its
 * own hidden layer Linear(d_i → h_i) + ReLU; the hidden units of all blocks are concatenated
 * (optionally batch-normalised, without γ, and dropped out) and a linear layer gives the logits.
 * Layers interact only in the output layer.
 *
 * Structures are written "5+25+10" (hidden units per block). Weights are N(0, 0.02), biases zero
 * (Chainer's defaults in the authors' code). Parameters: "5+100+25" at h = 64 has 10,841,440.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor2D, Variable } from "../util/tf_types.ts";
import { variableFrom } from "../util/tensors.ts";
import { Rng } from "../util/rng.ts";
import type { NamedArray } from "../run/bundle.ts";

/** Parses "5+25+10" into [5, 25, 10]. */
export function parseStructure(s: string): number[] {
  const parts = s.split("+").map((p) => Number(p.trim()));
  if (parts.length === 0 || parts.some((p) => !Number.isInteger(p) || p <= 0)) {
    throw new RangeError(
      `structure '${s}' is not like 5+25+10 (positive hidden sizes joined by +)`,
    );
  }
  return parts;
}

/** How a GradNet is built. */
export interface GradNetConfig {
  /** input size of each block (the gradient layout's block sizes) */
  blockSizes: number[];
  /** hidden units per block */
  hidden: number[];
  /** number of classes */
  classes: number;
  /** dropout rate on the concatenated hidden layer (0: off) */
  dropout: number;
  /** batch normalisation (no γ) of the concatenated hidden layer */
  batchNorm: boolean;
  /** seed of the initial weights */
  seed: number;
}

/** Parameter count of a GradNet without building it. */
export function gradNetParamCount(
  c: Pick<GradNetConfig, "blockSizes" | "hidden" | "classes" | "batchNorm">,
): number {
  const h = c.hidden.reduce((a, b) => a + b, 0);
  const blocks = c.blockSizes.reduce((s, d, i) => s + d * c.hidden[i] + c.hidden[i], 0);
  return blocks + h * c.classes + c.classes + (c.batchNorm ? h : 0);
}

/** A GradNet with its variables. */
export class GradNet {
  /** every trainable weight */
  readonly params: Variable[];
  /** batch-norm running statistics (not trained) */
  readonly stats: Variable[];
  private readonly offsets: number[];
  private readonly totalHidden: number;

  /** A GradNet built from `config`. */
  constructor(readonly config: GradNetConfig) {
    const { blockSizes, hidden, classes } = config;
    if (blockSizes.length !== hidden.length) {
      throw new RangeError(
        `structure has ${hidden.length} blocks but the gradient has ${blockSizes.length} layer blocks`,
      );
    }
    const rng = new Rng(config.seed);
    const normal = (shape: number[], name: string) =>
      variableFrom(
        tf.tensor(rng.normals(shape.reduce((a, b) => a * b, 1), 0.02), shape),
        true,
        name,
      );
    const zeros = (n: number, name: string, trainable = true) =>
      variableFrom(tf.zeros([n]), trainable, name);
    const uid = crypto.randomUUID().slice(0, 8);
    this.params = [];
    blockSizes.forEach((d, i) => {
      this.params.push(normal([d, hidden[i]], `gradnet_${uid}/block${i}/W`));
      this.params.push(zeros(hidden[i], `gradnet_${uid}/block${i}/b`));
    });
    this.totalHidden = hidden.reduce((a, b) => a + b, 0);
    if (config.batchNorm) this.params.push(zeros(this.totalHidden, `gradnet_${uid}/bn/beta`));
    this.params.push(normal([this.totalHidden, classes], `gradnet_${uid}/out/W`));
    this.params.push(zeros(classes, `gradnet_${uid}/out/b`));
    this.stats = config.batchNorm
      ? [
        variableFrom(tf.zeros([this.totalHidden]), false, `gradnet_${uid}/bn/mean`),
        variableFrom(tf.ones([this.totalHidden]), false, `gradnet_${uid}/bn/var`),
      ]
      : [];
    this.offsets = [];
    let o = 0;
    for (const d of blockSizes) {
      this.offsets.push(o);
      o += d;
    }
  }

  /** Input row length. */
  get inputSize(): number {
    return this.config.blockSizes.reduce((a, b) => a + b, 0);
  }

  /** Number of trainable parameters. */
  paramCount(): number {
    return this.params.reduce((s, p) => s + p.size, 0);
  }

  /** The concatenated hidden layer [B, Σh] (after ReLU). */
  hiddenLayer(x: Tensor2D): Tensor2D {
    return tf.tidy(() => {
      const b = x.shape[0];
      const parts = this.config.blockSizes.map((d, i) => {
        const xi = x.slice([0, this.offsets[i]], [b, d]);
        return tf.relu(tf.matMul(xi, this.params[2 * i]).add(this.params[2 * i + 1]));
      });
      return (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as Tensor2D;
    });
  }

  /**
   * Logits [B, classes]. In training mode batch norm uses (and updates, momentum 0.9) batch
   * statistics and dropout draws its mask from `dropoutSeed`.
   */
  apply(x: Tensor2D, o: { training: boolean; dropoutSeed?: number }): Tensor2D {
    return tf.tidy(() => {
      if (x.shape[1] !== this.inputSize) {
        throw new RangeError(`GradNet expects rows of ${this.inputSize}, got ${x.shape[1]}`);
      }
      let h: Tensor2D = this.hiddenLayer(x);
      const nb = this.config.blockSizes.length;
      let next = 2 * nb;
      if (this.config.batchNorm) {
        const beta = this.params[next++];
        const [mean, variance] = this.stats;
        // no γ, as the original; a constant 1 (TF.js's batch-norm gradient needs a scale tensor)
        const one = tf.onesLike(beta);
        if (o.training) {
          const m = tf.moments(h, 0);
          mean.assign(mean.mul(0.9).add(m.mean.mul(0.1)));
          variance.assign(variance.mul(0.9).add(m.variance.mul(0.1)));
          h = tf.batchNorm(h, m.mean, m.variance, beta, one, 1e-5) as Tensor2D;
        } else {
          h = tf.batchNorm(h, mean, variance, beta, one, 1e-5) as Tensor2D;
        }
      }
      if (o.training && this.config.dropout > 0) {
        h = tf.dropout(h, this.config.dropout, undefined, o.dropoutSeed ?? 0) as Tensor2D;
      }
      return tf.matMul(h, this.params[next]).add(this.params[next + 1]) as Tensor2D;
    });
  }

  /** Every variable (trainable first, then statistics), for checkpoints. */
  variables(): Variable[] {
    return [...this.params, ...this.stats];
  }

  /** Host copies of all variables (for saving). */
  toArrays(): Promise<NamedArray[]> {
    return Promise.all(
      this.variables().map(async (v, i) => ({
        name: `v${i}`,
        shape: v.shape,
        values: (await v.data()) as Float32Array,
      })),
    );
  }

  /** Loads variables saved by {@link toArrays}. */
  loadArrays(arrays: Map<string, NamedArray>): void {
    this.variables().forEach((v, i) => {
      const a = arrays.get(`v${i}`);
      if (!a || a.values.length !== v.size) {
        throw new Error(`GradNet weights: v${i} missing or misshapen`);
      }
      const t = tf.tensor(a.values, v.shape);
      v.assign(t);
      t.dispose();
    });
  }

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(this.variables());
  }
}
