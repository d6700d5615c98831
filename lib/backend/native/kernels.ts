/**
 * TF.js kernels for the wasm backend that run on the native library: convolutions (forward,
 * fused, input and filter gradients) and matrix products (plain and fused). Everything else stays
 * on wasm. Cases the native code does not cover (NCHW, non-float32, exotic activations or
 * broadcasts) are handed to the kernel that was registered before.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { f32View, type WasmBackendLike } from "../wasm_memory.ts";
import { type ConvGeometry, NativeActivation, type NativeLib, type PoolGeometry } from "./ffi.ts";

type KernelArgs = {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: WasmBackendLike;
  // deno-lint-ignore no-explicit-any
  attrs: Record<string, any>;
};
type KernelFn = (args: KernelArgs) => tf.TensorInfo;
type MultiKernelFn = (args: KernelArgs) => tf.TensorInfo[];

/**
 * A running statistic moved toward the batch's in float32 steps, as the stock ops do:
 * nu = m·old + (1 − m)·(batch·scale) (scale: the variance's count/(count − 1), else 1).
 */
function moveToward(
  old: Float32Array,
  batch: Float32Array,
  nu: Float32Array,
  m: number,
  scale: number,
): void {
  const mf = Math.fround(m), rest = Math.fround(1 - m), sf = Math.fround(scale);
  for (let j = 0; j < old.length; j++) {
    const b = scale === 1 ? batch[j] : Math.fround(batch[j] * sf);
    nu[j] = Math.fround(old[j] * mf) + Math.fround(b * rest);
  }
}

/** One layer of a "GradlabPerExampleGrads" call (see lib/gradients/per_example.ts). */
export interface PerExampleLayerAttr {
  kind: "conv" | "dense";
  kernelShape: number[];
  strides?: [number, number];
  pad?: "same" | "valid";
  kernelOffset: number;
  /** −1 when the bias is not included */
  biasOffset: number;
  /**
   * a max-pool above the conv layer whose output gradient is the call's `d` input (the pool's
   * input is `z`): the layer's deltas are left to the pool's winners
   */
  pool?: {
    filterSize: [number, number];
    strides: [number, number];
    pad: "same" | "valid";
    /** only windows with a maximum above 0 pass a gradient (the layer's ReLU) */
    positive: boolean;
  };
}

function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    ci: info.inChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    co: info.outChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
  };
}

function isChannelsLast(dataFormat: string | undefined): boolean {
  return dataFormat === undefined || dataFormat === "NHWC" || dataFormat === "channelsLast";
}

function allFloat32(...ts: (tf.TensorInfo | undefined)[]): boolean {
  return ts.every((t) => t === undefined || t.dtype === "float32");
}

function activationCode(name: string | undefined): number | undefined {
  return NativeActivation[(name ?? "linear") as keyof typeof NativeActivation];
}

function makeKernels(
  lib: NativeLib,
  fallback: (name: string) => KernelFn,
): Record<string, KernelFn | MultiKernelFn> {
  function conv2dImpl(args: KernelArgs, fused: boolean): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo>;
    const act = fused ? activationCode(attrs.activation) : 0;
    if (
      !isChannelsLast(attrs.dataFormat) || !allFloat32(x, filter, bias) || act === undefined ||
      preluActivationWeights || (bias && tf.util.sizeFromShape(bias.shape) !== filter.shape[3])
    ) {
      return fallback(fused ? "FusedConv2D" : "Conv2D")(args);
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const out = backend.makeOutput(info.outShape, "float32");
    if (tf.util.sizeFromShape(info.outShape) === 0) return out;
    lib.conv2d(
      f32View(backend, x),
      f32View(backend, filter),
      f32View(backend, out),
      geometry(info),
      bias ? f32View(backend, bias) : null,
      act,
      attrs.leakyreluAlpha ?? 0.2,
    );
    return out;
  }

  function conv2dBackpropInput(args: KernelArgs): tf.TensorInfo {
    const { inputs, attrs } = args;
    const { dy, filter } = inputs as Record<string, tf.TensorInfo>;
    if (!isChannelsLast(attrs.dataFormat) || !allFloat32(dy, filter)) {
      return fallback("Conv2DBackpropInput")(args);
    }
    return inputGradient(args, null);
  }

  // The input gradient of D directions per example (lib/gradients/network.ts): dy [n·D, …] and
  // attrs as Conv2DBackpropInput's (inputShape [n·D, …]) plus D; the kernel skips the zeros
  // that a max-pool above leaves in dy (kernels.c, "sparse deltas").
  function conv2dBackpropInputDirs(args: KernelArgs): tf.TensorInfo {
    return inputGradient(args, args.attrs.D as number);
  }

  function inputGradient(args: KernelArgs, D: number | null): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as Record<string, tf.TensorInfo>;
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const out = backend.makeOutput(info.inShape, "float32");
    if (tf.util.sizeFromShape(info.inShape) === 0) return out;
    const [dyv, fv, ov] = [dy, filter, out].map((t) => f32View(backend, t));
    if (D === null) lib.conv2dBackpropInput(dyv, fv, ov, geometry(info));
    else lib.conv2dBackpropInputDirs(dyv, fv, ov, geometry(info), D);
    return out;
  }

  function conv2dBackpropFilter(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { x, dy } = inputs as Record<string, tf.TensorInfo>;
    if (!isChannelsLast(attrs.dataFormat) || !allFloat32(x, dy)) {
      return fallback("Conv2DBackpropFilter")(args);
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const out = backend.makeOutput(attrs.filterShape, "float32");
    if (tf.util.sizeFromShape(attrs.filterShape) === 0) return out;
    lib.conv2dBackpropFilter(
      f32View(backend, x),
      f32View(backend, dy),
      f32View(backend, out),
      geometry(info),
    );
    return out;
  }

  function matmulImpl(args: KernelArgs, fused: boolean): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { a, b, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo>;
    const { transposeA, transposeB } = attrs;
    const act = fused ? activationCode(attrs.activation) : 0;
    const ra = a.shape.length, rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    const simpleBroadcast = batchA === batchB || batchA === 1 || batchB === 1;
    if (
      !allFloat32(a, b, bias) || act === undefined || preluActivationWeights || k !== kb ||
      !simpleBroadcast || (bias && tf.util.sizeFromShape(bias.shape) !== n)
    ) {
      return fallback(fused ? "_FusedMatMul" : "BatchMatMul")(args);
    }
    const outer = tf.backend_util.assertAndGetBroadcastShape(
      a.shape.slice(0, -2),
      b.shape.slice(0, -2),
    );
    const outShape = [...outer, m, n];
    const batch = Math.max(batchA, batchB);
    const out = backend.makeOutput(outShape, "float32");
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    lib.matmul(f32View(backend, a), f32View(backend, b), f32View(backend, out), {
      batch,
      m,
      n,
      k,
      transA: Boolean(transposeA),
      transB: Boolean(transposeB),
      aStride: batchA === 1 ? 0 : m * k,
      bStride: batchB === 1 ? 0 : k * n,
      bias: bias ? f32View(backend, bias) : null,
      act,
      alpha: attrs.leakyreluAlpha ?? 0.2,
    });
    return out;
  }

  // The pooling geometry of a MaxPoolGrad / AvgPoolGrad call.
  function poolGeometry(input: tf.TensorInfo, attrs: KernelArgs["attrs"]): PoolGeometry {
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return {
      n: info.batchSize,
      h: info.inHeight,
      w: info.inWidth,
      c: info.inChannels,
      oh: info.outHeight,
      ow: info.outWidth,
      kh: info.filterHeight,
      kw: info.filterWidth,
      sh: info.strideHeight,
      sw: info.strideWidth,
      pt: info.padInfo.top,
      pl: info.padInfo.left,
    };
  }

  function maxPoolGrad(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { dy, input } = inputs as Record<string, tf.TensorInfo>;
    if (!allFloat32(dy, input) || input.shape.length !== 4) return fallback("MaxPoolGrad")(args);
    const g = poolGeometry(input, attrs);
    const out = backend.makeOutput(input.shape, "float32");
    if (tf.util.sizeFromShape(input.shape) === 0) return out;
    lib.maxPoolGrad(f32View(backend, input), f32View(backend, dy), f32View(backend, out), g);
    return out;
  }

  // The max-pool gradient of D directions per example (lib/gradients/network.ts): dy [n·D, …],
  // input [n, …] (attrs D, filterSize, strides, pad, and `positive`: windows whose maximum is
  // not above 0 pass nothing); no repeated input and output.
  function maxPoolGradDirs(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { dy, input } = inputs as Record<string, tf.TensorInfo>;
    const D = attrs.D as number;
    const g = poolGeometry(input, attrs);
    const out = backend.makeOutput([input.shape[0] * D, ...input.shape.slice(1)], "float32");
    if (tf.util.sizeFromShape(out.shape) === 0) return out;
    lib.maxPoolGradDirs(
      f32View(backend, input),
      f32View(backend, dy),
      f32View(backend, out),
      g,
      D,
      attrs.positive === true,
    );
    return out;
  }

  function avgPoolGrad(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const { dy, input } = inputs as Record<string, tf.TensorInfo>;
    if (!allFloat32(dy, input) || input.shape.length !== 4) return fallback("AvgPoolGrad")(args);
    const g = poolGeometry(input, attrs);
    // the native kernel spreads each window evenly: only windows wholly inside the input
    const inside = g.pt === 0 && g.pl === 0 && (g.oh - 1) * g.sh + g.kh <= g.h &&
      (g.ow - 1) * g.sw + g.kw <= g.w;
    if (!inside) return fallback("AvgPoolGrad")(args);
    const out = backend.makeOutput(input.shape, "float32");
    if (tf.util.sizeFromShape(input.shape) === 0) return out;
    lib.avgPoolGrad(f32View(backend, dy), f32View(backend, out), g);
    return out;
  }

  // Sum over leading or trailing axes; a reduction over every axis runs as one row (vector
  // lanes; as one column it was a chain of 1 M scalar additions).
  function reduceSum(args: KernelArgs, kernel: "Sum" | "Mean"): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((p, q) => p - q);
    const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
    const trailing = contiguous && axes.length > 0 && axes[axes.length - 1] === rank - 1;
    const leading = contiguous && axes.length > 0 && axes[0] === 0 && !trailing;
    if (x.dtype !== "float32" || !(leading || trailing) || rank === 0) {
      return fallback(kernel)(args);
    }
    const kept = x.shape.filter((_, i) => !axes.includes(i));
    const outShape = attrs.keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : kept;
    const out = backend.makeOutput(outShape, "float32");
    const split = leading ? axes.length : rank - axes.length;
    const rows = tf.util.sizeFromShape(x.shape.slice(0, split));
    const cols = tf.util.sizeFromShape(x.shape.slice(split));
    const xv = f32View(backend, x), ov = f32View(backend, out);
    if (ov.length === 0) return out;
    if (xv.length === 0) ov.fill(kernel === "Mean" ? NaN : 0);
    else if (leading) lib.sumRows(xv, ov, rows, cols);
    else lib.sumCols(xv, ov, rows, cols);
    if (kernel === "Mean" && xv.length) {
      const n = leading ? rows : cols;
      for (let i = 0; i < ov.length; i++) ov[i] = ov[i] / n;
    }
    return out;
  }

  // Add, Sub and Mul of float32 tensors of one shape, or with a single value on the right (the
  // gradient sums and masks of the backward passes); broadcasts of other shapes go to wasm.
  function binary(name: "Add" | "Sub" | "Multiply", op: 0 | 1 | 2): KernelFn {
    return (args) => {
      const { a, b } = args.inputs as Record<string, tf.TensorInfo>;
      const sa = tf.util.sizeFromShape(a.shape), sb = tf.util.sizeFromShape(b.shape);
      const same = tf.util.arraysEqual(a.shape, b.shape);
      // a lone value on the right, and a result of a's shape (b's rank no larger)
      const scalarRight = sb === 1 && b.shape.length <= a.shape.length;
      // [n, D, m] with [n, 1, m]: one example's mask over its D gradient directions
      const dirs = a.shape.length === 3 && b.shape.length === 3 && b.shape[1] === 1 &&
        a.shape[0] === b.shape[0] && a.shape[2] === b.shape[2];
      if (
        a.dtype !== "float32" || b.dtype !== "float32" || !(same || scalarRight || dirs) ||
        sa < 1024
      ) {
        return fallback(name)(args);
      }
      const out = args.backend.makeOutput(a.shape, "float32");
      const [av, bv, ov] = [a, b, out].map((t) => f32View(args.backend, t));
      if (same || scalarRight) lib.binary(av, bv, ov, op);
      else lib.binaryDirs(av, bv, ov, a.shape as [number, number, number], op);
      return out;
    };
  }

  function step(args: KernelArgs): tf.TensorInfo {
    const x = args.inputs.x!;
    if (x.dtype !== "float32" || tf.util.sizeFromShape(x.shape) < 1024) {
      return fallback("Step")(args);
    }
    const out = args.backend.makeOutput(x.shape, "float32");
    lib.step(f32View(args.backend, x), f32View(args.backend, out), Number(args.attrs.alpha ?? 0));
    return out;
  }

  // A cast to the tensor's own dtype is a copy in wasm (the Square gradient casts every time);
  // tensors are immutable, so it shares the data, as identity does.
  function cast(args: KernelArgs): tf.TensorInfo {
    const x = args.inputs.x!;
    if (x.dtype !== args.attrs.dtype || x.dtype === "string") return fallback("Cast")(args);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }

  // TF.js's wasm Slice copies its whole input out of the heap first (readSync): a fresh host
  // allocation, page faults and all, on every call. This one copies only the block.
  function slice(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    if (x.dtype !== "float32" && x.dtype !== "int32") return fallback("Slice")(args);
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
    const out = backend.makeOutput(size, x.dtype);
    if (tf.util.sizeFromShape(size) === 0) return out;
    if (x.shape.length === 0 || x.shape.length > 8) return fallback("Slice")(args);
    lib.slice(f32View(backend, x), f32View(backend, out), x.shape, begin, size);
    return out;
  }

  // PadV2 is the gradient of every Slice (zeros around the slice's gradient) and the input
  // padding of GradNet's base network: wasm's kernel took 1.2–1.6 ms for a [64,16,16,16] →
  // [64,16,16,64] pad in the W4 block and 0.53 ms for [64,24,24,3] → [64,26,26,3] (tf.profile).
  // Here it is a fill and one copy per run of the innermost padded axis.
  function padV2(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    const paddings = attrs.paddings as unknown as [number, number][];
    const value = Number(attrs.constantValue ?? 0);
    if (x.dtype !== "float32" || x.shape.length === 0 || x.shape.length > 8) {
      return fallback("PadV2")(args);
    }
    const outShape = x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]);
    const out = backend.makeOutput(outShape, "float32");
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    const ov = f32View(backend, out);
    const xv = f32View(backend, x);
    if (xv.length === 0) {
      ov.fill(value);
      return out;
    }
    lib.pad(xv, ov, x.shape, outShape, paddings.map(([b]) => b), value);
    return out;
  }

  // TF.js's wasm Concat copies row by row from JavaScript, and its SplitV slices through a path
  // that copies the whole input each time; both are one strided block copy per piece here.
  function concat(args: KernelArgs): tf.TensorInfo {
    const { backend, attrs } = args;
    const xs = (args.inputs as unknown as tf.TensorInfo[]).filter((t) =>
      tf.util.sizeFromShape(t.shape) > 0
    );
    const all = args.inputs as unknown as tf.TensorInfo[];
    if (!all.length || all.some((t) => t.dtype !== all[0].dtype) || all[0].dtype === "string") {
      return fallback("Concat")(args);
    }
    const axis = tf.util.parseAxisParam(attrs.axis, all[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(all.map((t) => t.shape), axis);
    const out = backend.makeOutput(outShape, all[0].dtype);
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    const rows = tf.util.sizeFromShape(outShape.slice(0, axis));
    const dld = tf.util.sizeFromShape(outShape.slice(axis));
    const ov = f32View(backend, out);
    let offset = 0;
    for (const x of xs) {
      const cols = tf.util.sizeFromShape(x.shape.slice(axis));
      lib.copyBlock(f32View(backend, x), cols, ov.subarray(offset), dld, rows, cols);
      offset += cols;
    }
    return out;
  }

  function splitV(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    if (x.dtype === "string") return fallback("SplitV")(args) as unknown as tf.TensorInfo[];
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, axis));
    const inner = tf.util.sizeFromShape(x.shape.slice(axis + 1));
    const sld = x.shape[axis] * inner;
    const outs = sizes.map((d) => {
      const shape = x.shape.slice();
      shape[axis] = d;
      return backend.makeOutput(shape, x.dtype);
    });
    // views after every allocation: makeOutput can move the heap
    const xv = f32View(backend, x);
    let offset = 0;
    sizes.forEach((d, i) => {
      if (d * rows * inner > 0) {
        lib.copyBlock(
          xv.subarray(offset),
          sld,
          f32View(backend, outs[i]),
          d * inner,
          rows,
          d * inner,
        );
      }
      offset += d * inner;
    });
    return outs;
  }

  // A whole SGD step of one parameter (lib/train/optimizers.ts) in one kernel.
  function sgdUpdate(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const { p, g, v } = inputs as Record<string, tf.TensorInfo | undefined>;
    const pOut = backend.makeOutput(p!.shape, "float32");
    const vOut = v ? backend.makeOutput(v.shape, "float32") : null;
    if (tf.util.sizeFromShape(p!.shape) > 0) {
      lib.sgdUpdate(
        f32View(backend, p!),
        f32View(backend, g!),
        v ? f32View(backend, v) : null,
        f32View(backend, pOut),
        vOut ? f32View(backend, vOut) : null,
        {
          lr: attrs.lr as number,
          momentum: attrs.momentum as number,
          weightDecay: attrs.weightDecay as number,
          nesterov: Boolean(attrs.nesterov),
        },
      );
    }
    return vOut ? [pOut, vOut] : [pOut];
  }

  // Every parameter of a model in one kernel: inputs p0, g0, v0, p1, …; outputs p0', v0', p1', ….
  // A mini-GUNN step updates 377 tensors, and each kernel launch costs more than its update.
  function sgdUpdateMany(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const count = attrs.count as number;
    const momentum = attrs.momentum as number;
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < count; i++) {
      const p = inputs[`p${i}`]!;
      outs.push(backend.makeOutput(p.shape, "float32"));
      if (momentum) outs.push(backend.makeOutput(p.shape, "float32"));
    }
    const o = {
      lr: attrs.lr as number,
      momentum,
      weightDecay: attrs.weightDecay as number,
      nesterov: Boolean(attrs.nesterov),
    };
    const k = momentum ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const p = inputs[`p${i}`]!;
      if (tf.util.sizeFromShape(p.shape) === 0) continue;
      lib.sgdUpdate(
        f32View(backend, p),
        f32View(backend, inputs[`g${i}`]!),
        momentum ? f32View(backend, inputs[`v${i}`]!) : null,
        f32View(backend, outs[k * i]),
        momentum ? f32View(backend, outs[k * i + 1]) : null,
        o,
      );
    }
    return outs;
  }

  function rmspropUpdate(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const { p, g, s } = inputs as Record<string, tf.TensorInfo>;
    const pOut = backend.makeOutput(p.shape, "float32"),
      sOut = backend.makeOutput(s.shape, "float32");
    if (tf.util.sizeFromShape(p.shape) > 0) {
      lib.rmspropUpdate(
        f32View(backend, p),
        f32View(backend, g),
        f32View(backend, s),
        f32View(backend, pOut),
        f32View(backend, sOut),
        { lr: attrs.lr as number, rho: attrs.rho as number, epsilon: attrs.epsilon as number },
      );
    }
    return [pOut, sOut];
  }

  // Training-mode batch norm as two kernels (see lib/layers/batch_norm.ts) instead of the dozen
  // small ones TF.js composes it from.
  function bnTrain(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
    const c = x.shape[x.shape.length - 1], rows = tf.util.sizeFromShape(x.shape) / c;
    const y = backend.makeOutput(x.shape, "float32");
    const stats = [0, 1, 2].map(() => backend.makeOutput([c], "float32"));
    const [mean, variance, rstd] = stats;
    if (rows > 0) {
      lib.bnForward(
        f32View(backend, x),
        f32View(backend, gamma),
        f32View(backend, beta),
        {
          y: f32View(backend, y),
          mean: f32View(backend, mean),
          variance: f32View(backend, variance),
          rstd: f32View(backend, rstd),
        },
        rows,
        c,
        attrs.epsilon as number,
      );
    }
    return [y, mean, variance, rstd];
  }

  function bnTrainGrad(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend } = args;
    const { x, dy, gamma, mean, rstd } = inputs as Record<string, tf.TensorInfo>;
    const c = x.shape[x.shape.length - 1], rows = tf.util.sizeFromShape(x.shape) / c;
    const dx = backend.makeOutput(x.shape, "float32");
    const dgamma = backend.makeOutput([c], "float32"), dbeta = backend.makeOutput([c], "float32");
    if (rows > 0) {
      lib.bnBackward(
        f32View(backend, x),
        f32View(backend, dy),
        f32View(backend, gamma),
        f32View(backend, mean),
        f32View(backend, rstd),
        {
          dx: f32View(backend, dx),
          dgamma: f32View(backend, dgamma),
          dbeta: f32View(backend, dbeta),
        },
        rows,
        c,
      );
    }
    return [dx, dgamma, dbeta];
  }

  // A whole GUNN layer each way (lib/layers/gunn_fused.ts): inputs x, p0 … p(12S−1); outputs
  // y, the units' activations [S, rows·10o] and statistics [S, 18o].
  // The layer's input, its shape, segments S and segment width o.
  function gunnLayerShape(args: KernelArgs) {
    const S = args.attrs.segments as number, x = args.inputs.x!;
    const [n, h, w, c] = x.shape;
    return { x, S, n, h, w, c, o: c / S, gradual: Boolean(args.attrs.gradual) };
  }

  function gunnLayer(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const { x, S, n, h, w, c, o, gradual } = gunnLayerShape(args);
    const ins = [x, ...Array.from({ length: 12 * S }, (_, k) => inputs[`p${k}`]!)];
    const outs = [
      backend.makeOutput(x.shape, "float32"),
      backend.makeOutput([S, n * h * w * 10 * o], "float32"),
      backend.makeOutput([S, 18 * o], "float32"),
    ];
    if (n * h * w > 0) {
      lib.gunnLayerForward(
        ins.map((t) => f32View(backend, t)),
        outs.map((t) => f32View(backend, t)),
        { n, h, w, c, segments: S, gradual },
        attrs.epsilon as number,
      );
    }
    return outs;
  }

  // inputs dy, x, y, acts, stats, w0 … w(8S−1); outputs dx and 12 weight gradients per unit.
  function gunnLayerGrad(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend } = args;
    const { x, S, n, h, w, c, o, gradual } = gunnLayerShape(args);
    const weights = Array.from({ length: 8 * S }, (_, k) => inputs[`w${k}`]!);
    const ins = [inputs.dy!, x, inputs.y!, inputs.acts!, inputs.stats!, ...weights];
    const outs = [backend.makeOutput(x.shape, "float32")];
    for (let i = 0; i < S; i++) {
      for (const t of weights.slice(8 * i, 8 * i + 4)) {
        outs.push(backend.makeOutput(t.shape, "float32"));
      }
      for (const k of [2, 2, 2, 2, 1, 1, 1, 1]) outs.push(backend.makeOutput([k * o], "float32"));
    }
    if (n * h * w > 0) {
      lib.gunnLayerBackward(
        ins.map((t) => f32View(backend, t)),
        outs.map((t) => f32View(backend, t)),
        { n, h, w, c, segments: S, gradual },
      );
    }
    return outs;
  }

  // A gradually updated block whose units replace their segment (lib/layers/gunn_block.ts):
  // inputs x, then k, γ, β per unit (p0 …); outputs y, acts [2, rows·C] (the units'
  // convolutions, then the final state), stats [S, 3o].
  function gunnBlock(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const { x, S, n, h, w, c, o } = gunnLayerShape(args);
    const ins = [x, ...Array.from({ length: 3 * S }, (_, k) => inputs[`p${k}`]!)];
    const outs = [
      backend.makeOutput(x.shape, "float32"),
      backend.makeOutput([2, n * h * w * c], "float32"),
      backend.makeOutput([S, 3 * o], "float32"),
    ];
    if (n * h * w > 0) {
      lib.gunnBlockForward(
        ins.map((t) => f32View(backend, t)),
        outs.map((t) => f32View(backend, t)),
        { n, h, w, c, segments: S, gradual: true },
        attrs.epsilon as number,
      );
    }
    return outs;
  }

  // inputs dy, x, acts, stats, then k, γ per unit (w0 …); outputs dx, then dk, dγ, dβ per unit.
  function gunnBlockGrad(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend } = args;
    const { x, S, n, h, w, c, o } = gunnLayerShape(args);
    const weights = Array.from({ length: 2 * S }, (_, k) => inputs[`w${k}`]!);
    const ins = [inputs.dy!, x, inputs.acts!, inputs.stats!, ...weights];
    const outs = [backend.makeOutput(x.shape, "float32")];
    for (let i = 0; i < S; i++) {
      outs.push(backend.makeOutput(weights[2 * i].shape, "float32"));
      outs.push(backend.makeOutput([o], "float32"), backend.makeOutput([o], "float32"));
    }
    if (n * h * w > 0) {
      lib.gunnBlockBackward(
        ins.map((t) => f32View(backend, t)),
        outs.map((t) => f32View(backend, t)),
        { n, h, w, c, segments: S, gradual: true },
      );
    }
    return outs;
  }

  // Running statistics of a GUNN layer's norms (lib/layers/gunn_fused.ts), four per unit: a few
  // hundred numbers, so plain JavaScript on the wasm heap, one kernel instead of about 28 a unit.
  function gunnMovingStats(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const stats = inputs.stats!; // [S, 18o]: per unit mean | variance | rstd, each 6o
    const [S, width] = stats.shape;
    const o = width / 18;
    const m = attrs.momentum as number, count = attrs.count as number;
    const running = Array.from({ length: 8 * S }, (_, k) => inputs[`running${k}`]!);
    const outs = running.map((t) => backend.makeOutput(t.shape, "float32"));
    const st = f32View(backend, stats);
    // packed as bn1 (2o) | projection (o) | bn2 (2o) | bn3 (o); running stats come bn1, bn2, bn3,
    // projection
    const offsets = [0, 3 * o, 5 * o, 2 * o];
    const unbias = count > 1 ? count / (count - 1) : 1;
    for (let k = 0; k < 8 * S; k++) {
      const unit = k >> 3, norm = (k & 7) >> 1, isVar = k & 1;
      const old = f32View(backend, running[k]), nu = f32View(backend, outs[k]);
      const batch = st.subarray(unit * 18 * o + isVar * 6 * o + offsets[norm]);
      moveToward(old, batch, nu, m, isVar ? unbias : 1);
    }
    return outs;
  }

  // A batch norm's running statistics (lib/layers/batch_norm.ts): new = m·old + (1 − m)·batch,
  // the variance unbiased by count/(count − 1); one kernel instead of seven.
  function movingStats(args: KernelArgs): tf.TensorInfo[] {
    const { inputs, backend, attrs } = args;
    const m = attrs.momentum as number, count = attrs.count as number;
    const unbias = count > 1 ? count / (count - 1) : 1;
    const pairs = [[inputs.mean!, inputs.movingMean!], [inputs.variance!, inputs.movingVariance!]];
    const outs = pairs.map(([, old]) => backend.makeOutput(old.shape, "float32"));
    pairs.forEach(([batch, old], isVar) => {
      const [o, b, nu] = [old, batch, outs[isVar]].map((t) => f32View(backend, t));
      moveToward(o, b, nu, m, isVar ? unbias : 1);
    });
    return outs;
  }

  // TF.js saves each tensor a gradient needs by cloning it (an Identity kernel), and wasm's
  // Identity copies the data: a mini-GUNN step copied every activation its fused layers save.
  // Tensors are immutable, so a clone can share the data, as wasm's own Reshape and the cpu
  // backend's Identity do (measured: 118 → 106 ms per mini-GUNN step at 1 thread).
  function identity(args: KernelArgs): tf.TensorInfo {
    const x = args.inputs.x!;
    if (x.dtype === "string") return fallback("Identity")(args);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }

  // TF.js's wasm Tile is a scalar loop: hundreds of ms for a few million values.
  function tile(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    const reps = attrs.reps as number[];
    if (
      (x.dtype !== "float32" && x.dtype !== "int32") || x.shape.length === 0 || x.shape.length > 8
    ) {
      return fallback("Tile")(args);
    }
    const shape = x.shape.map((d, i) => d * reps[i]);
    const out = backend.makeOutput(shape, x.dtype);
    if (tf.util.sizeFromShape(shape) === 0) return out;
    lib.tile(f32View(backend, x), f32View(backend, out), x.shape, reps);
    return out;
  }

  function im2col(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.kernelShape,
      attrs.strides,
      1,
      attrs.pad,
    );
    const g = geometry(info);
    const out = backend.makeOutput([g.n, g.oh * g.ow, g.kh * g.kw * g.ci], "float32");
    if (g.n * g.oh * g.ow === 0) return out;
    lib.im2col(f32View(backend, x), f32View(backend, out), g);
    return out;
  }

  // Inputs a0, d0, a1, d1, …: each layer's input [N, …] and output delta [N·D, …]; output
  // [N·D, P] with every layer's per-example gradient written in place (no temporaries).
  function perExampleGrads(args: KernelArgs): tf.TensorInfo {
    const { inputs, backend, attrs } = args;
    const layers = attrs.layers as PerExampleLayerAttr[];
    const D = attrs.D as number, P = attrs.P as number;
    const n = inputs.a0!.shape[0];
    const out = backend.makeOutput([n * D, P], "float32");
    if (n * D * P === 0) return out;
    const ov = f32View(backend, out);
    layers.forEach((l, i) => {
      const a = inputs[`a${i}`]!, d = inputs[`d${i}`]!;
      const av = f32View(backend, a), dv = f32View(backend, d);
      if (l.kind === "dense") {
        lib.perExampleDense(av, dv, ov, {
          n,
          in: l.kernelShape[0],
          out: l.kernelShape[1],
          D,
          P,
          kernelOffset: l.kernelOffset,
          biasOffset: l.biasOffset,
        });
      } else {
        const info = tf.backend_util.computeConv2DInfo(
          a.shape as [number, number, number, number],
          l.kernelShape as [number, number, number, number],
          l.strides!,
          1,
          l.pad!,
        );
        const o = { D, P, kernelOffset: l.kernelOffset, biasOffset: l.biasOffset };
        if (l.pool) {
          const z = inputs[`z${i}`]!;
          const pool = poolGeometry(z, { ...l.pool } as unknown as KernelArgs["attrs"]);
          lib.perExampleConvPooled(av, f32View(backend, z), dv, ov, geometry(info), pool, {
            ...o,
            positive: l.pool.positive,
          });
        } else {
          lib.perExampleConv(av, dv, ov, geometry(info), o);
        }
      }
    });
    return out;
  }

  return {
    GradlabPerExampleGrads: perExampleGrads,
    Identity: identity,
    Slice: slice,
    Tile: tile,
    Concat: concat,
    GradlabBatchNormTrain: bnTrain,
    GradlabGunnMovingStats: gunnMovingStats,
    GradlabMovingStats: movingStats,
    GradlabGunnLayer: gunnLayer,
    GradlabGunnLayerGrad: gunnLayerGrad,
    GradlabGunnBlock: gunnBlock,
    GradlabGunnBlockGrad: gunnBlockGrad,
    GradlabSgdUpdate: sgdUpdate,
    GradlabSgdUpdateMany: sgdUpdateMany,
    GradlabRmsPropUpdate: rmspropUpdate,
    GradlabBatchNormTrainGrad: bnTrainGrad,
    SplitV: splitV,
    PadV2: padV2,
    GradlabIm2Col: im2col,
    MaxPoolGrad: maxPoolGrad,
    GradlabMaxPoolGradDirs: maxPoolGradDirs,
    GradlabConvInputGradDirs: conv2dBackpropInputDirs,
    AvgPoolGrad: avgPoolGrad,
    Sum: (args) => reduceSum(args, "Sum"),
    Mean: (args) => reduceSum(args, "Mean"),
    Cast: cast,
    Add: binary("Add", 0),
    Sub: binary("Sub", 1),
    Multiply: binary("Multiply", 2),
    Step: step,
    Conv2D: (args) => conv2dImpl(args, false),
    FusedConv2D: (args) => conv2dImpl(args, true),
    Conv2DBackpropInput: conv2dBackpropInput,
    Conv2DBackpropFilter: conv2dBackpropFilter,
    BatchMatMul: (args) => matmulImpl(args, false),
    _FusedMatMul: (args) => matmulImpl(args, true),
  };
}

/** A set of kernel overrides that can be undone. */
export interface KernelOverride {
  uninstall(): void;
}

/**
 * Registers `kernels` on `backendName`, replacing what was there, and returns a handle that
 * restores the previous registrations. `fallback(name)` gives the kernel that was registered
 * before (for cases an override hands back).
 */
export function overrideKernels(
  backendName: string,
  build: (fallback: (name: string) => KernelFn) => Record<string, KernelFn | MultiKernelFn>,
): KernelOverride {
  const previous = new Map<string, tf.KernelConfig | undefined>();
  const fallback = (name: string): KernelFn => {
    const prev = previous.get(name);
    if (!prev) {
      return () => {
        throw new Error(`${name} on ${backendName}: case not supported and no other kernel exists`);
      };
    }
    return prev.kernelFunc as unknown as KernelFn;
  };
  const kernels = build(fallback);
  for (const [name, fn] of Object.entries(kernels)) {
    const prev = tf.getKernel(name, backendName);
    previous.set(name, prev);
    if (prev) tf.unregisterKernel(name, backendName);
    tf.registerKernel({
      kernelName: name,
      backendName,
      kernelFunc: fn as unknown as tf.KernelFunc,
    });
  }
  return {
    uninstall() {
      for (const [name, prev] of previous) {
        tf.unregisterKernel(name, backendName);
        if (prev) tf.registerKernel(prev);
      }
    },
  };
}

/** Installs the native kernels on the wasm backend. */
export function installNativeKernels(lib: NativeLib): KernelOverride {
  return overrideKernels("wasm", (fallback) => makeKernels(lib, fallback));
}
