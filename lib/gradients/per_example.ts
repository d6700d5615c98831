/**
 * Per-example gradients of the cross-entropy loss with respect to a network's weights, for a
 * whole batch at once — no batch-1 loop.
 *
 * For one example with logits z, probabilities p = softmax(z) and label y, the gradient of
 * CE = −log p_y with respect to z is p − e_y. A layer with input a and pre-activation output
 * z_l = a·W (dense) or conv(a, W) then has the per-example weight gradient
 *   dense:  ∂CE/∂W = δ ⊗ a                (outer product of output delta and input)
 *   conv:   ∂CE/∂W = Σ_pixels δ ⊗ patch(a) (patches of the input times the output delta)
 * where δ = ∂CE/∂z_l comes from one batched backward pass. Because the gradient is affine in the
 * one-hot label, the gradients for every label k are those of the seeds p − e_k: all K labels
 * cost one forward pass and one backward pass with K seed directions batched together.
 *
 * **Layout.** Rows are the concatenation, layer by layer in network order, of each chosen weight
 * layer's kernel gradient (and, with `includeBias`, then its bias gradient), each flattened in
 * the layout of its TF.js weight tensor: dense kernel [in, out]; conv kernel [kh, kw, in, out];
 * biases [out]. The `layout` returned says where each block starts.
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
import {
  backward,
  forward,
  netFromModel,
  type NetOp,
  type PooledDeltas,
  type Tape,
} from "./network.ts";

/** Where one weight tensor's gradient sits in a row. */
export interface LayoutBlock {
  /** index of the operation in the network */
  op: number;
  /** name of its layer */
  layer: string;
  /** kind of its layer */
  kind: "conv" | "dense";
  /** which weight tensor */
  part: "kernel" | "bias";
  /** shape of the block in the row's coordinate order (see the module doc) */
  shape: number[];
  /** first coordinate in the row */
  offset: number;
  /** number of coordinates */
  size: number;
}

/** The blocks of a gradient row and its length P. */
export interface GradientLayout {
  /** the blocks, in row order */
  blocks: LayoutBlock[];
  /** row length P */
  size: number;
}

/** Options of the per-example gradient functions. */
export interface PerExampleOptions {
  /** also the biases (default false: kernels only, as GradNet) */
  includeBias?: boolean;
  /** names of the weight layers to include (default: every conv and dense layer) */
  layers?: string[];
  /** with biases: all kernel blocks first, then all bias blocks (default: layer by layer) */
  biasLast?: boolean;
}

function resolveOps(model: LayersModel | NetOp[]): NetOp[] {
  return Array.isArray(model) ? model : netFromModel(model);
}

/** The layout of gradient rows for `model`. */
export function gradientLayout(
  model: LayersModel | NetOp[],
  o: PerExampleOptions = {},
): GradientLayout {
  const ops = resolveOps(model);
  const blocks: LayoutBlock[] = [];
  let offset = 0;
  ops.forEach((op, i) => {
    if (op.kind !== "conv" && op.kind !== "dense") return;
    if (o.layers && !o.layers.includes(op.name)) return;
    const shape = [...op.kernel.shape] as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    blocks.push({ op: i, layer: op.name, kind: op.kind, part: "kernel", shape, offset, size });
    offset += size;
    if (o.includeBias && op.bias) {
      const out = op.bias.shape[0];
      blocks.push({
        op: i,
        layer: op.name,
        kind: op.kind,
        part: "bias",
        shape: [out],
        offset,
        size: out,
      });
      offset += out;
    }
  });
  if (o.biasLast) {
    // Same blocks, kernels first: recompute the offsets in that order.
    blocks.sort((a, b) => (a.part === b.part ? a.offset - b.offset : a.part === "kernel" ? -1 : 1));
    let at = 0;
    for (const b of blocks) {
      b.offset = at;
      at += b.size;
    }
  }
  if (o.layers) {
    const missing = o.layers.filter((n) => !blocks.some((b) => b.layer === n));
    if (missing.length) throw new RangeError(`no conv or dense layer named ${missing.join(", ")}`);
  }
  return { blocks, size: offset };
}

/** Patches of an NHWC input for a conv: [N, OH·OW, KH·KW·C], columns ordered (kh, kw, c). */
export function im2col(
  a: Tensor4D,
  kernelShape: [number, number, number, number],
  strides: [number, number],
  pad: "same" | "valid",
): Tensor3D {
  // The native and wasm backends have a kernel for it; others compose it from slices.
  if (tf.getKernel("GradlabIm2Col", tf.getBackend())) {
    return tf.engine().runKernel("GradlabIm2Col", { x: a }, {
      kernelShape,
      strides,
      pad,
    }) as Tensor3D;
  }
  const info = tf.backend_util.computeConv2DInfo(a.shape, kernelShape, strides, 1, pad);
  const { top, bottom, left, right } = info.padInfo;
  const [n, , , c] = a.shape;
  const padded = top || bottom || left || right
    ? tf.pad(a, [[0, 0], [top, bottom], [left, right], [0, 0]])
    : a;
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const slices: Tensor[] = [];
  for (let ky = 0; ky < kernelShape[0]; ky++) {
    for (let kx = 0; kx < kernelShape[1]; kx++) {
      slices.push(
        sh === 1 && sw === 1
          ? padded.slice([0, ky, kx, 0], [n, oh, ow, c])
          : tf.stridedSlice(padded, [0, ky, kx, 0], [
            n,
            ky + (oh - 1) * sh + 1,
            kx + (ow - 1) * sw + 1,
            c,
          ], [1, sh, sw, 1]),
      );
    }
  }
  const cat = slices.length === 1 ? slices[0] : tf.concat(slices, 3);
  return cat.reshape([n, oh * ow, kernelShape[0] * kernelShape[1] * c]);
}

/** Patches of every conv block's input, computed once per forward pass. Call inside tf.tidy. */
function convPatches(ops: NetOp[], tape: Tape, layout: GradientLayout): Map<number, Tensor3D> {
  const patches = new Map<number, Tensor3D>();
  if (hasFusedKernel()) return patches; // the fused kernel reads patches in place
  for (const b of layout.blocks) {
    const op = ops[b.op];
    if (op.kind !== "conv" || b.part !== "kernel" || patches.has(b.op)) continue;
    patches.set(
      b.op,
      im2col(
        tape.inputs[b.op] as Tensor4D,
        op.kernel.shape,
        op.strides,
        op.pad as "same" | "valid",
      ),
    );
  }
  return patches;
}

/** Per-example gradients [N, D, P] for seeds [N, D, K]. Call inside tf.tidy. */
function gradientsForSeeds(
  ops: NetOp[],
  tape: Tape,
  seeds: Tensor3D,
  layout: GradientLayout,
  patchCache: Map<number, Tensor3D>,
): Tensor3D {
  const [n, d] = seeds.shape;
  const fused = hasFusedKernel();
  const { dense: deltas, pooled } = backward(ops, tape, seeds, { pooledFirst: fused });
  if (fused) return fusedGradients(ops, tape, deltas, pooled, layout, n, d);
  const parts = layout.blocks.map((b) => {
    const op = ops[b.op];
    const delta = deltas.get(b.op)!;
    const a = tape.inputs[b.op];
    if (op.kind === "dense") {
      const out = op.kernel.shape[1], inp = op.kernel.shape[0];
      if (b.part === "bias") return delta.reshape([n, d, out]);
      return a.reshape([n, 1, inp, 1]).mul(delta.reshape([n, d, 1, out])).reshape([
        n,
        d,
        inp * out,
      ]);
    }
    if (op.kind !== "conv") throw new Error("unreachable");
    const co = op.kernel.shape[3];
    const [, oh, ow] = delta.shape;
    const pix = oh! * ow!;
    if (b.part === "bias") return delta.reshape([n, d, pix, co]).sum(2);
    const patches = patchCache.get(b.op)!;
    // patchesᵀ [Kp, pix] · δ [pix, D·Co] per example covers every direction at once.
    const dT = d === 1
      ? delta.reshape([n, pix, co])
      : delta.reshape([n, d, pix, co]).transpose([0, 2, 1, 3]).reshape([n, pix, d * co]);
    const g = tf.matMul(patches, dT as Tensor3D, true, false); // [N, Kp, D·Co]
    return d === 1
      ? g.reshape([n, 1, b.size])
      : g.reshape([n, -1, d, co]).transpose([0, 2, 1, 3]).reshape([n, d, b.size]);
  });
  return (parts.length === 1 ? parts[0] : tf.concat(parts, 2)) as Tensor3D;
}

function hasFusedKernel(): boolean {
  return tf.getKernel("GradlabPerExampleGrads", tf.getBackend()) !== undefined;
}

/** The same, by the backend's fused kernel: every block written in place into [N·D, P]. */
function fusedGradients(
  ops: NetOp[],
  tape: Tape,
  deltas: Map<number, Tensor>,
  pooled: Map<number, PooledDeltas>,
  layout: GradientLayout,
  n: number,
  d: number,
): Tensor3D {
  const inputs: Record<string, Tensor> = {};
  const layers: Record<string, unknown>[] = [];
  for (const b of layout.blocks) {
    if (b.part !== "kernel") continue;
    const op = ops[b.op] as Extract<NetOp, { kind: "conv" | "dense" }>;
    const bias = layout.blocks.find((x) => x.op === b.op && x.part === "bias");
    const i = layers.length;
    inputs[`a${i}`] = tape.inputs[b.op];
    const p = pooled.get(b.op);
    inputs[`d${i}`] = p ? p.dy : deltas.get(b.op)!;
    if (p) inputs[`z${i}`] = p.input;
    layers.push({
      kind: op.kind,
      kernelShape: op.kernel.shape,
      strides: op.kind === "conv" ? op.strides : undefined,
      pad: op.kind === "conv" ? op.pad : undefined,
      kernelOffset: b.offset,
      biasOffset: bias ? bias.offset : -1,
      pool: p
        ? { filterSize: p.pool, strides: p.strides, pad: p.pad, positive: p.positive }
        : undefined,
    });
  }
  const attrs = { layers, D: d, P: layout.size } as unknown as tf.NamedAttrMap;
  const out = tf.engine().runKernel("GradlabPerExampleGrads", inputs, attrs) as Tensor;
  return out.reshape([n, d, layout.size]);
}

function labelTensor(labels: ArrayLike<number> | Tensor1D, n: number, k: number): Tensor2D {
  const t = labels instanceof tf.Tensor ? labels.toInt() : tf.tensor1d(Array.from(labels), "int32");
  if (t.shape[0] !== n) throw new RangeError(`${t.shape[0]} labels for ${n} examples`);
  return tf.oneHot(t as Tensor1D, k) as Tensor2D;
}

/**
 * ∂CE(f(x_i), y_i)/∂W for every example: a [N, P] matrix (and its layout).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { perExampleGradients } from "./per_example.ts";
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ inputShape: [3], units: 2, kernelInitializer: "ones" })],
 * });
 * const x = tf.tensor2d([[1, 2, 3], [0, -1, 1]]);
 * const { gradients, layout } = perExampleGradients(model, x, [0, 1], { includeBias: true });
 * // logits are equal, so p = (½, ½): example 0 (label 0) has ∂/∂W[j][k] = x_j · (p_k − δ_k0)
 * const g = await gradients.data();
 * const want = [-0.5, 0.5, -1, 1, -1.5, 1.5]; // kernel [3][2], then the bias block
 * if (layout.size !== 8 || want.some((v, i) => Math.abs(g[i] - v) > 1e-6)) throw new Error("wrong");
 * ```
 *
 * @param model a sequential TF.js model (or operations from {@link netFromModel})
 * @param x a batch [N, ...input shape]
 * @param labels N integer labels
 */
export function perExampleGradients(
  model: LayersModel | NetOp[],
  x: Tensor,
  labels: ArrayLike<number> | Tensor1D,
  o: PerExampleOptions = {},
): { gradients: Tensor2D; layout: GradientLayout } {
  const ops = resolveOps(model);
  const layout = gradientLayout(ops, o);
  const gradients = tf.tidy(() => {
    const tape = forward(ops, x);
    const [n, k] = tape.logits.shape;
    const seeds = tf.softmax(tape.logits).sub(labelTensor(labels, n, k)).reshape([
      n,
      1,
      k,
    ]) as Tensor3D;
    return gradientsForSeeds(ops, tape, seeds, layout, convPatches(ops, tape, layout))
      .reshape([n, layout.size]) as Tensor2D;
  });
  return { gradients, layout };
}

/**
 * The gradients for every candidate label, in blocks of `labelChunk` labels: one forward pass,
 * then for each block one backward pass of its seeds p − e_k, yielding [N, labels in block, P].
 * Each yielded tensor belongs to the caller; the forward pass is freed when the generator ends.
 */
export function* labelGradientBlocks(
  model: LayersModel | NetOp[],
  x: Tensor,
  o: PerExampleOptions & { labelChunk?: number } = {},
): Generator<
  {
    gradients: Tensor3D;
    labels: [number, number];
    layout: GradientLayout;
    probabilities: Tensor2D;
  }
> {
  const ops = resolveOps(model);
  const layout = gradientLayout(ops, o);
  const held = tf.tidy(() => {
    const tape = forward(ops, x);
    const pm = convPatches(ops, tape, layout);
    return {
      inputs: tape.inputs,
      outputs: tape.outputs,
      derivatives: tape.derivatives.filter((t): t is Tensor => t !== null),
      derivativeAt: tape.derivatives.map((t) => t !== null),
      logits: tape.logits,
      p: tf.softmax(tape.logits),
      patchOps: [...pm.keys()],
      patchTensors: [...pm.values()],
    };
  }) as unknown as Omit<Tape, "derivatives"> & {
    derivatives: Tensor[];
    derivativeAt: boolean[];
    p: Tensor2D;
    patchOps: number[];
    patchTensors: Tensor3D[];
  };
  // tf.tidy returns tensors only: put the nulls of the derivative list back.
  let next = 0;
  const derivatives = held.derivativeAt.map((has) => (has ? held.derivatives[next++] : null));
  const kept = { tape: { ...held, derivatives } as Tape, p: held.p };
  const patches = new Map(held.patchOps.map((op, i) => [op, held.patchTensors[i]]));
  const [n, k] = kept.p.shape;
  const chunk = Math.max(1, Math.min(k, o.labelChunk ?? k));
  try {
    for (let k0 = 0; k0 < k; k0 += chunk) {
      const kk = Math.min(chunk, k - k0);
      const gradients = tf.tidy(() => {
        // seeds[i, j, :] = p_i − e_{k0+j}
        const eye = tf.oneHot(tf.range(k0, k0 + kk, 1, "int32"), k).reshape([1, kk, k]);
        const seeds = kept.p.reshape([n, 1, k]).sub(eye) as Tensor3D;
        return gradientsForSeeds(ops, kept.tape, seeds, layout, patches);
      });
      yield { gradients, labels: [k0, k0 + kk], layout, probabilities: kept.p };
    }
  } finally {
    // The tape holds x itself (the caller's) among its inputs: free everything else.
    const mine = [
      ...held.inputs,
      ...held.outputs,
      ...held.derivatives,
      held.logits,
      held.p,
      ...held.patchTensors,
    ];
    tf.dispose(mine.filter((t) => t !== x));
  }
}

/**
 * The gradient for every candidate label: a [N, K, P] tensor whose [i, k] row is
 * ∂CE(f(x_i), k)/∂W, from one forward pass and backward passes of the K seeds per example
 * (`labelChunk` at a time). Also returns p = softmax(f(x)).
 */
export function allLabelGradients(
  model: LayersModel | NetOp[],
  x: Tensor,
  o: PerExampleOptions & { labelChunk?: number } = {},
): { gradients: Tensor3D; layout: GradientLayout; probabilities: Tensor2D } {
  const parts: Tensor3D[] = [];
  let layout: GradientLayout | null = null;
  let probabilities: Tensor2D | null = null;
  for (const b of labelGradientBlocks(model, x, o)) {
    parts.push(b.gradients);
    layout = b.layout;
    probabilities ??= b.probabilities.clone();
  }
  const gradients = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
  if (parts.length > 1) tf.dispose(parts);
  return { gradients, layout: layout!, probabilities: probabilities! };
}

/**
 * Streams per-example gradients chunk by chunk for any number of examples and labels: forward
 * once per example batch, then yields [batch, labels-in-chunk, P] host arrays. Memory stays
 * bounded by one chunk whatever N is.
 *
 * @param batches yields input batches [b, ...] and, for single-label mode, their labels
 * @param o.labels `"all"` for every label, or `"given"` to use each batch's labels
 */
export async function* gradientStream(
  model: LayersModel | NetOp[],
  batches:
    | Iterable<{ x: Tensor; labels?: ArrayLike<number> }>
    | AsyncIterable<{ x: Tensor; labels?: ArrayLike<number> }>,
  o: PerExampleOptions & { labels: "all" | "given"; labelChunk?: number },
): AsyncGenerator<
  { gradients: Float32Array; shape: [number, number, number]; layout: GradientLayout }
> {
  const ops = resolveOps(model);
  const layout = gradientLayout(ops, o);
  for await (const b of batches) {
    if (o.labels === "given") {
      if (!b.labels) throw new RangeError("gradientStream: labels 'given' but a batch has none");
      const { gradients } = perExampleGradients(ops, b.x, b.labels, o);
      const data = (await gradients.data()) as Float32Array;
      gradients.dispose();
      yield { gradients: data, shape: [b.x.shape[0], 1, layout.size], layout };
      continue;
    }
    for (const block of labelGradientBlocks(ops, b.x, o)) {
      const data = (await block.gradients.data()) as Float32Array;
      const shape = block.gradients.shape;
      block.gradients.dispose();
      yield { gradients: data, shape, layout };
    }
  }
}
