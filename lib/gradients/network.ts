/**
 * A sequential network as a list of explicit operations, with a forward pass that records what
 * per-example gradients need (each weight layer's input and pre-activation output) and a
 * backward pass that propagates many seed directions at once (batch N·D) without re-running the
 * forward pass.
 *
 * Supported TF.js layers: InputLayer, ZeroPadding2D, Conv2D, Dense, MaxPooling2D,
 * AveragePooling2D, Flatten, Reshape, Activation (relu, linear, tanh, sigmoid, elu not included),
 * ReLU, LeakyReLU, Dropout (identity: gradients are taken in inference mode). A final softmax
 * activation is treated as part of the loss (the logits are taken before it).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type {
  LayersModel,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
} from "../util/tf_types.ts";

/** Activations whose derivative the backward pass knows. */
export type ActivationName = "linear" | "relu" | "tanh" | "sigmoid" | "leakyrelu" | "square";

/** One operation of the network. */
export type NetOp =
  | { kind: "pad"; pads: [[number, number], [number, number]] }
  | {
    kind: "conv";
    name: string;
    kernel: Tensor4D;
    bias: Tensor1D | null;
    strides: [number, number];
    pad: "same" | "valid" | [
      [number, number],
      [number, number],
      [number, number],
      [number, number],
    ];
    activation: ActivationName;
    alpha: number;
  }
  | {
    kind: "dense";
    name: string;
    kernel: Tensor2D;
    bias: Tensor1D | null;
    activation: ActivationName;
    alpha: number;
  }
  | {
    kind: "maxpool" | "avgpool";
    pool: [number, number];
    strides: [number, number];
    pad: "same" | "valid";
  }
  | { kind: "reshape"; shape: number[] }
  | { kind: "act"; activation: ActivationName; alpha: number };

/** A model that is not supported, with the reason. */
export class UnsupportedModelError extends Error {
  /** the error's name */
  override name = "UnsupportedModelError";
}

function activationOf(name: string | undefined, where: string): ActivationName {
  const n = (name ?? "linear").toLowerCase();
  if (n === "linear" || n === "relu" || n === "tanh" || n === "sigmoid") return n;
  throw new UnsupportedModelError(
    `${where}: activation '${name}' is not supported for per-example gradients`,
  );
}

// deno-lint-ignore no-explicit-any
type AnyLayer = tf.layers.Layer & Record<string, any>;

/**
 * Converts a sequential TF.js model into operations. The kernels are the model's own variables
 * (read, not copied), so the operations follow later training of the model.
 */
export function netFromModel(model: LayersModel): NetOp[] {
  const ops: NetOp[] = [];
  const layers = model.layers as AnyLayer[];
  layers.forEach((l, i) => {
    const cls = l.getClassName();
    const cfg = l.getConfig() as Record<string, unknown>;
    const where = `layer ${i} (${l.name}, ${cls})`;
    const isLast = i === layers.length - 1;
    const act = (name: unknown) =>
      isLast && name === "softmax" ? "linear" : activationOf(name as string | undefined, where);
    switch (cls) {
      case "InputLayer":
        break;
      case "ZeroPadding2D": {
        const p = cfg.padding as [[number, number], [number, number]];
        ops.push({ kind: "pad", pads: p });
        break;
      }
      case "Conv2D": {
        if (cfg.dataFormat === "channelsFirst") {
          throw new UnsupportedModelError(`${where}: channelsFirst`);
        }
        const d = cfg.dilationRate as number[] | number;
        if ((Array.isArray(d) ? d : [d]).some((v) => v !== 1)) {
          throw new UnsupportedModelError(`${where}: dilation`);
        }
        const [kernel, bias] = l.getWeights() as Tensor[];
        ops.push({
          kind: "conv",
          name: l.name,
          kernel: kernel as Tensor4D,
          bias: (cfg.useBias ? bias : null) as Tensor1D | null,
          strides: cfg.strides as [number, number],
          pad: cfg.padding === "same" ? "same" : "valid",
          activation: act(cfg.activation),
          alpha: 0,
        });
        break;
      }
      case "Dense": {
        const [kernel, bias] = l.getWeights() as Tensor[];
        ops.push({
          kind: "dense",
          name: l.name,
          kernel: kernel as Tensor2D,
          bias: (cfg.useBias ? bias : null) as Tensor1D | null,
          activation: act(cfg.activation),
          alpha: 0,
        });
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D":
        ops.push({
          kind: cls === "MaxPooling2D" ? "maxpool" : "avgpool",
          pool: cfg.poolSize as [number, number],
          strides: (cfg.strides ?? cfg.poolSize) as [number, number],
          pad: cfg.padding === "same" ? "same" : "valid",
        });
        break;
      case "Flatten":
        ops.push({ kind: "reshape", shape: [-1] });
        break;
      case "Reshape":
        ops.push({ kind: "reshape", shape: cfg.targetShape as number[] });
        break;
      case "Activation":
        ops.push({ kind: "act", activation: act(cfg.activation), alpha: 0 });
        break;
      case "ReLU":
        ops.push({ kind: "act", activation: "relu", alpha: 0 });
        break;
      case "LeakyReLU":
        ops.push({ kind: "act", activation: "leakyrelu", alpha: (cfg.alpha as number) ?? 0.3 });
        break;
      case "Dropout":
        break; // inference mode: identity
      default:
        throw new UnsupportedModelError(
          `${where}: layer type ${cls} is not supported for per-example gradients`,
        );
    }
  });
  // getWeights() returns the layers' variables themselves, so the operations see later updates.
  return ops;
}

/** What the forward pass keeps for the backward pass and the weight gradients. */
export interface Tape {
  /** per op: its input */
  inputs: Tensor[];
  /**
   * per op: its pre-activation output (conv, dense, act) or output; for a conv or dense layer
   * with a ReLU, the activation (the derivative needs only the sign)
   */
  outputs: Tensor[];
  /**
   * per op: the activation's derivative at the pre-activation (null: linear, no activation, or a
   * ReLU whose derivative the max-pool above applies)
   */
  derivatives: (Tensor | null)[];
  logits: Tensor2D;
}

function applyAct(z: Tensor, a: ActivationName, alpha: number): Tensor {
  switch (a) {
    case "linear":
      return z;
    case "relu":
      return tf.relu(z);
    case "tanh":
      return tf.tanh(z);
    case "sigmoid":
      return tf.sigmoid(z);
    case "leakyrelu":
      return tf.leakyRelu(z, alpha);
    case "square":
      return tf.square(z);
  }
}

/** dφ/dz at pre-activation z, as a tensor broadcastable against z. */
function actDerivative(z: Tensor, a: ActivationName, alpha: number): Tensor | null {
  switch (a) {
    case "linear":
      return null;
    case "relu":
      return tf.step(z);
    case "tanh": {
      const t = tf.tanh(z);
      return tf.scalar(1).sub(t.square());
    }
    case "sigmoid": {
      const s = tf.sigmoid(z);
      return s.mul(tf.scalar(1).sub(s));
    }
    case "leakyrelu":
      return tf.where(z.greater(0), tf.onesLike(z), tf.fill(z.shape, alpha));
    case "square":
      return z.mul(2);
  }
}

/** Forward pass of the network on `x`, recording the tape. Call inside tf.tidy. */
export function forward(ops: NetOp[], x: Tensor): Tape {
  const inputs: Tensor[] = [], outputs: Tensor[] = [];
  const derivatives: (Tensor | null)[] = [];
  let h = x;
  for (const op of ops) {
    inputs.push(h);
    let z: Tensor;
    switch (op.kind) {
      case "pad":
        z = tf.pad(h, [[0, 0], op.pads[0], op.pads[1], [0, 0]]);
        outputs.push(z);
        h = z;
        break;
      case "conv":
        // the bias in the convolution's epilogue (one kernel; the separate broadcast Add ran in
        // wasm at 0.43 ms for GradNet's first layer, batch 64)
        // a ReLU in the epilogue too: its derivative step(z) is step(ReLU(z)), so the tape keeps
        // the activation in place of z (one pass less over the layer's output)
        z = tf.fused.conv2d({
          x: h as Tensor4D,
          filter: op.kernel,
          strides: op.strides,
          pad: op.pad,
          bias: op.bias ?? undefined,
          activation: op.activation === "relu" ? "relu" : "linear",
        });
        outputs.push(z);
        h = op.activation === "relu" ? z : applyAct(z, op.activation, op.alpha);
        break;
      case "dense":
        z = tf.fused.matMul({
          a: h as Tensor2D,
          b: op.kernel,
          bias: op.bias ?? undefined,
          activation: op.activation === "relu" ? "relu" : "linear",
        });
        outputs.push(z);
        h = op.activation === "relu" ? z : applyAct(z, op.activation, op.alpha);
        break;
      case "maxpool":
        z = tf.maxPool(h as Tensor4D, op.pool, op.strides, op.pad);
        outputs.push(z);
        h = z;
        break;
      case "avgpool":
        z = tf.avgPool(h as Tensor4D, op.pool, op.strides, op.pad);
        outputs.push(z);
        h = z;
        break;
      case "reshape":
        z = h.reshape([h.shape[0], ...op.shape]);
        outputs.push(z);
        h = z;
        break;
      case "act":
        outputs.push(h);
        h = applyAct(h, op.activation, op.alpha);
        break;
    }
  }
  if (h.rank !== 2) {
    throw new UnsupportedModelError(
      `the network's output has rank ${h.rank}, expected [batch, classes]`,
    );
  }
  // Derivatives once per forward pass: every seed block of the backward pass reuses them.
  ops.forEach((op, i) => {
    const act = (op.kind === "conv" || op.kind === "dense" || op.kind === "act") &&
      !reluFoldedIntoPool(ops, i + 1);
    derivatives.push(
      act
        ? actDerivative(op.kind === "act" ? inputs[i] : outputs[i], op.activation, op.alpha)
        : null,
    );
  });
  return { inputs, outputs, derivatives, logits: h as Tensor2D };
}

/**
 * Whether op i is a max-pool right above a ReLU layer whose derivative its native gradient
 * kernel applies (`positive`: only windows with a maximum above 0 pass a gradient, which is
 * step(ReLU output) at the winner): the layer then keeps no derivative and the backward pass
 * skips a multiply of all D gradients by the mask.
 */
function reluFoldedIntoPool(ops: NetOp[], i: number): boolean {
  const op = ops[i], below = ops[i - 1];
  return op?.kind === "maxpool" && below !== undefined &&
    (below.kind === "conv" || below.kind === "dense" || below.kind === "act") &&
    below.activation === "relu" &&
    tf.getKernel("GradlabMaxPoolGradDirs", tf.getBackend()) !== undefined;
}

/** Repeats each row of a tensor D times: [N, ...] → [N·D, ...] (row i·D + d = row i). */
function repeatRows(t: Tensor, d: number): Tensor {
  if (d === 1) return t;
  const [n, ...rest] = t.shape;
  // rank 3, whatever t's rank: WebGPU tiles rank ≥ 5 on the CPU through a synchronous read
  const size = rest.reduce((a, b) => a * b, 1);
  return tf.tile(t.reshape([n, 1, size]), [1, d, 1]).reshape([n * d, ...rest]);
}

/** g [N·D, ...] times m [N, ...], broadcast over the D rows of each example. */
function mulRows(g: Tensor, m: Tensor, d: number): Tensor {
  if (d === 1) return g.mul(m);
  const [n, ...rest] = m.shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return g.reshape([n, d, size]).mul(m.reshape([n, 1, size])).reshape([n * d, ...rest]);
}

/**
 * A conv layer's deltas left implicit: the gradient of the max-pool right above it and the pool's
 * input. The deltas are that gradient routed to each window's winner (times the layer's ReLU
 * derivative when `positive`).
 */
export interface PooledDeltas {
  /** the pool's output gradient [N·D, ph, pw, co] */
  dy: Tensor;
  /** the pool's input: the layer's output (its activation) [N, oh, ow, co] */
  input: Tensor;
  pool: [number, number];
  strides: [number, number];
  pad: "same" | "valid";
  /** only windows with a maximum above 0 pass a gradient (the layer's ReLU) */
  positive: boolean;
}

/** What the backward pass returns. */
export interface Deltas {
  /** per conv/dense op: the gradient w.r.t. its pre-activation output, [N·D, ...] */
  dense: Map<number, Tensor>;
  /** per conv op whose deltas were left to the max-pool above it (option `pooledFirst`) */
  pooled: Map<number, PooledDeltas>;
}

/**
 * Backward pass for `seeds` [N, D, K] (D directions per example, e.g. softmax − one-hot for each
 * label) from the logits down: returns, for every conv/dense op, the gradient with respect to its
 * pre-activation output, shaped [N·D, ...] (row i·D + d). Call inside tf.tidy.
 *
 * With `pooledFirst`, a first weight layer that is a conv right below a max-pool (linear, or a
 * ReLU the pool folds in) gets no dense deltas: nothing else reads them, and the native
 * per-example kernel builds its lists from the pool's winners (kernels.c, gl_pe_conv_pooled).
 */
export function backward(
  ops: NetOp[],
  tape: Tape,
  seeds: Tensor3D,
  o: { pooledFirst?: boolean } = {},
): Deltas {
  const [n, d, k] = seeds.shape;
  const deltas = new Map<number, Tensor>();
  const pooled = new Map<number, PooledDeltas>();
  const firstWeight = ops.findIndex((o) => o.kind === "conv" || o.kind === "dense");
  let g: Tensor = seeds.reshape([n * d, k]); // gradient w.r.t. the current op's output
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i];
    const input = tape.inputs[i];
    switch (op.kind) {
      case "pad": {
        const [[t], [l]] = op.pads;
        const [, h, w, c] = input.shape as number[];
        g = g.slice([0, t, l, 0], [n * d, h, w, c]);
        break;
      }
      case "conv":
      case "dense": {
        const der = tape.derivatives[i];
        if (der) g = mulRows(g, der, d);
        deltas.set(i, g);
        // nothing below the first weight layer needs it
        if (i === firstWeight) return { dense: deltas, pooled };
        const inputShape = [n * d, ...input.shape.slice(1)] as [number, number, number, number];
        g = op.kind === "dense"
          ? tf.matMul(g as Tensor2D, op.kernel, false, true)
          : tf.getKernel("GradlabConvInputGradDirs", tf.getBackend())
          // native: the zeros a max-pool above leaves in g, the same for an example's d
          // directions, are skipped (kernels.c, "sparse deltas")
          ? tf.engine().runKernel("GradlabConvInputGradDirs", { dy: g, filter: op.kernel }, {
            inputShape,
            strides: op.strides,
            pad: op.pad,
            D: d,
          } as unknown as tf.NamedAttrMap) as Tensor
          : tf.conv2dTranspose(
            g as Tensor4D,
            op.kernel,
            inputShape,
            op.strides,
            op.pad,
          );
        break;
      }
      case "maxpool": {
        const attrs = { filterSize: op.pool, strides: op.strides, pad: op.pad };
        const positive = reluFoldedIntoPool(ops, i);
        if (
          o.pooledFirst && i - 1 === firstWeight && ops[i - 1].kind === "conv" &&
          tape.derivatives[i - 1] === null
        ) {
          const { pool, strides, pad } = op;
          pooled.set(i - 1, { dy: g, input, pool, strides, pad, positive });
          return { dense: deltas, pooled };
        }
        if ((d > 1 || positive) && tf.getKernel("GradlabMaxPoolGradDirs", tf.getBackend())) {
          // native: each window's winner found once per example for all d directions
          g = tf.engine().runKernel("GradlabMaxPoolGradDirs", { dy: g, input }, {
            ...attrs,
            D: d,
            positive,
          } as unknown as tf.NamedAttrMap) as Tensor;
          break;
        }
        const x = repeatRows(input, d), y = repeatRows(tape.outputs[i], d);
        g = tf.engine().runKernel(
          "MaxPoolGrad",
          { dy: g, input: x, output: y },
          attrs as unknown as tf.NamedAttrMap,
        ) as Tensor;
        break;
      }
      case "avgpool":
        g = tf.engine().runKernel("AvgPoolGrad", { dy: g, input: repeatRows(input, d) }, {
          filterSize: op.pool,
          strides: op.strides,
          pad: op.pad,
        }) as Tensor;
        break;
      case "reshape":
        g = g.reshape([n * d, ...input.shape.slice(1)]);
        break;
      case "act": {
        const der = tape.derivatives[i];
        if (der) g = mulRows(g, der, d);
        break;
      }
    }
  }
  return { dense: deltas, pooled };
}
