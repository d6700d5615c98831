/**
 * Convolution gradients for the pure wasm backend, composed from its XNNPACK forward convolution.
 *
 * TF.js's wasm backend has no `Conv2DBackpropFilter` (so CNN training throws) and a slow scalar
 * `Conv2DBackpropInput`. Both gradients are convolutions in disguise (NHWC, filter HWIO):
 *
 * - filter gradient: dW[ky,kx,ci,co] = Σ_{n,oy,ox} x[n, oy·s+ky−pt, ox·s+kx−pl, ci] · dy[n,oy,ox,co].
 *   With x' = x transposed to [ci,H,W,n] and f' = dy transposed to [oh,ow,n,co], this is a stride-1
 *   convolution of x' with f' dilated by the stride s, whose output [ci,KH,KW,co] is dW transposed.
 * - input gradient: dx = conv(dy dilated by s, W flipped in space with in/out channels swapped),
 *   padded by KH−1−pt (top) so that the output is H×W.
 *
 * The kernels call other wasm kernels directly (not tf ops), inside the engine's kernel call.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { f32View, type WasmBackendLike } from "./wasm_memory.ts";
import { type KernelOverride, overrideKernels } from "./native/kernels.ts";

type KernelArgs = {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: WasmBackendLike;
  // deno-lint-ignore no-explicit-any
  attrs: Record<string, any>;
};
type KernelFn = (args: KernelArgs) => tf.TensorInfo;

/** How many times each composed kernel has run (tests use it to prove the kernel was used). */
export const composedKernelCalls: Record<string, number> = {};
const count = (name: string) => (composedKernelCalls[name] = (composedKernelCalls[name] ?? 0) + 1);

/** Runs wasm kernels by name and frees every intermediate at the end. */
class KernelRunner {
  private temps: tf.TensorInfo[] = [];
  constructor(private backend: WasmBackendLike) {}

  run(
    name: string,
    inputs: Record<string, tf.TensorInfo>,
    // deno-lint-ignore no-explicit-any
    attrs: Record<string, any> = {},
  ): tf.TensorInfo {
    const config = tf.getKernel(name, "wasm");
    if (!config) throw new Error(`wasm kernel ${name} is not registered`);
    const out = config.kernelFunc({
      inputs,
      attrs,
      backend: this.backend as unknown as tf.KernelBackend,
    }) as tf.TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** Keeps `result` and disposes every other intermediate. */
  finish(result: tf.TensorInfo): tf.TensorInfo {
    for (const t of this.temps) {
      if (t.dataId !== result.dataId) this.backend.disposeData(t.dataId);
    }
    this.temps = [];
    return result;
  }
}

/** Inserts s−1 zeros between rows and columns of an NHWC tensor: [n,h,w,c] → [n,(h−1)s+1,(w−1)t+1,c]. */
function dilateSpatial(
  r: KernelRunner,
  x: tf.TensorInfo,
  sh: number,
  sw: number,
): tf.TensorInfo {
  if (sh === 1 && sw === 1) return x;
  const [n, h, w, c] = x.shape;
  const x6 = r.run("Reshape", { x }, { shape: [n, h, 1, w, 1, c] });
  const padded = r.run("PadV2", { x: x6 }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  const flat = r.run("Reshape", { x: padded }, { shape: [n, h * sh, w * sw, c] });
  return r.run("Slice", { x: flat }, {
    begin: [0, 0, 0, 0],
    size: [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c],
  });
}

function convInfo(
  xShape: number[],
  filterShape: number[],
  // deno-lint-ignore no-explicit-any
  attrs: Record<string, any>,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

/** Conv2DBackpropFilter on wasm, as one XNNPACK forward convolution. */
export function conv2dBackpropFilterComposed(args: KernelArgs): tf.TensorInfo {
  count("Conv2DBackpropFilter");
  const { inputs, backend, attrs } = args;
  const x = inputs.x!, dy = inputs.dy!;
  const info = convInfo(x.shape, attrs.filterShape, attrs);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { outHeight: oh, outWidth: ow, inHeight: h, inWidth: w } = info;
  const { top: pt, left: pl } = info.padInfo;
  const r = new KernelRunner(backend);
  let xt = r.run("Transpose", { x }, { perm: [3, 1, 2, 0] }); // [ci, H, W, n]
  const ft = r.run("Transpose", { x: dy }, { perm: [1, 2, 0, 3] }); // [oh, ow, n, co]
  // Padding after, chosen so that the output is exactly kh × kw; a negative value means the
  // forward pass never read the last rows (floor-mode striding), so they are cut off instead.
  let pb = (oh - 1) * sh + kh - h - pt;
  let pr = (ow - 1) * sw + kw - w - pl;
  if (pb < 0 || pr < 0) {
    const [c, hh, ww, n] = xt.shape;
    xt = r.run("Slice", { x: xt }, {
      begin: [0, 0, 0, 0],
      size: [c, hh + Math.min(pb, 0), ww + Math.min(pr, 0), n],
    });
    pb = Math.max(pb, 0);
    pr = Math.max(pr, 0);
  }
  const conv = r.run("Conv2D", { x: xt, filter: ft }, {
    strides: [1, 1],
    pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]],
    dataFormat: "NHWC",
    dilations: [sh, sw],
  }); // [ci, kh, kw, co]
  return r.finish(r.run("Transpose", { x: conv }, { perm: [1, 2, 0, 3] }));
}

/** Conv2DBackpropInput on wasm, as one XNNPACK forward convolution of the dilated dy. */
export function conv2dBackpropInputComposed(args: KernelArgs): tf.TensorInfo {
  count("Conv2DBackpropInput");
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy!, filter = inputs.filter!;
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { inHeight: h, inWidth: w } = info;
  const { top: pt, left: pl } = info.padInfo;
  const r = new KernelRunner(backend);
  const flipped = r.run("Reverse", { x: filter }, { dims: [0, 1] });
  const ft = r.run("Transpose", { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh, kw, co, ci]
  const dyd = dilateSpatial(r, dy, sh, sw);
  const [, dh, dw] = dyd.shape;
  // Padding of the "full" convolution. A negative amount means those rows of dy only ever saw the
  // forward pass's padding (large explicit pads): they contribute nothing and are cut off.
  const top = kh - 1 - pt, left = kw - 1 - pl;
  const bottom = h + kh - 1 - dh - top, right = w + kw - 1 - dw - left;
  let src = dyd;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) {
    const [n, hh, ww, c] = src.shape;
    const cutT = Math.max(-top, 0), cutL = Math.max(-left, 0);
    src = r.run("Slice", { x: src }, {
      begin: [0, cutT, cutL, 0],
      size: [n, hh - cutT - Math.max(-bottom, 0), ww - cutL - Math.max(-right, 0), c],
    });
  }
  const out = r.run("Conv2D", { x: src, filter: ft }, {
    strides: [1, 1],
    pad: [
      [0, 0],
      [Math.max(top, 0), Math.max(bottom, 0)],
      [Math.max(left, 0), Math.max(right, 0)],
      [
        0,
        0,
      ],
    ],
    dataFormat: "NHWC",
    dilations: [1, 1],
  });
  return r.finish(out);
}

/**
 * MaxPoolGrad in TypeScript over wasm memory. The wasm backend's own MaxPoolGrad routes gradients
 * to wrong positions when there is more than one channel (measured against the cpu backend in
 * tests/backend/wasm_kernels_test.ts); this one sends each dy to the first maximum of its window,
 * as the cpu reference does.
 */
export function maxPoolGradTs(args: KernelArgs): tf.TensorInfo {
  count("MaxPoolGrad");
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy!, input = inputs.input!;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const out = backend.makeOutput(input.shape, "float32");
  const x = f32View(backend, input), g = f32View(backend, dy), dx = f32View(backend, out);
  dx.fill(0);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } =
    info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top: pt, left: pl } = info.padInfo;
  let gi = 0;
  for (let b = 0; b < n; b++) {
    const base = b * h * w * c;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ch = 0; ch < c; ch++, gi++) {
          let best = -Infinity, where = -1;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - pt + ky;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - pl + kx;
              if (ix < 0 || ix >= w) continue;
              const idx = base + (iy * w + ix) * c + ch;
              if (x[idx] > best) {
                best = x[idx];
                where = idx;
              }
            }
          }
          if (where >= 0) dx[where] += g[gi];
        }
      }
    }
  }
  return out;
}

/** Slice over heap views (TF.js's wasm Slice first copies its whole input out of the heap). */
export function sliceTs(args: KernelArgs, fallback: (n: string) => KernelFn): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  if (x.dtype !== "float32" && x.dtype !== "int32") return fallback("Slice")(args);
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
  const out = backend.makeOutput(size, x.dtype);
  const total = tf.util.sizeFromShape(size);
  if (total === 0) return out;
  const src = f32View(backend, x), dst = f32View(backend, out);
  const rank = x.shape.length;
  if (rank === 0) {
    dst[0] = src[0];
    return out;
  }
  const strides = tf.util.computeStrides(x.shape);
  const inner = size[rank - 1];
  const outer = total / inner;
  const idx = new Array(rank - 1).fill(0);
  for (let r = 0; r < outer; r++) {
    let off = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d];
    dst.set(src.subarray(off, off + inner), r * inner);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Tile over heap views (TF.js's wasm Tile is a slow scalar loop). */
export function tileTs(args: KernelArgs, fallback: (n: string) => KernelFn): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const reps = attrs.reps as number[];
  if ((x.dtype !== "float32" && x.dtype !== "int32") || x.shape.length === 0) {
    return fallback("Tile")(args);
  }
  const shape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(shape, x.dtype);
  const total = tf.util.sizeFromShape(shape);
  if (total === 0) return out;
  const src = f32View(backend, x), dst = f32View(backend, out);
  const rank = x.shape.length;
  const xStrides = tf.util.computeStrides(x.shape);
  const inner = x.shape[rank - 1], rin = reps[rank - 1];
  const outer = total / (inner * rin);
  const idx = new Array(rank - 1).fill(0);
  for (let r = 0; r < outer; r++) {
    let off = 0;
    for (let d = 0; d < rank - 1; d++) off += (idx[d] % x.shape[d]) * xStrides[d];
    const row = src.subarray(off, off + inner);
    for (let k = 0; k < rin; k++) dst.set(row, (r * rin + k) * inner);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Patches [n, oh·ow, kh·kw·c] of an NHWC input, over heap views (see per_example.ts). */
export function im2colTs(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.kernelShape,
    attrs.strides,
    1,
    attrs.pad,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } =
    info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top: pt, left: pl } = info.padInfo;
  const out = backend.makeOutput([n, oh * ow, kh * kw * c], "float32");
  if (n * oh * ow === 0) return out;
  const src = f32View(backend, x), dst = f32View(backend, out);
  dst.fill(0);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky;
          for (let kx = 0; kx < kw; kx++, o += c) {
            const ix = ox * sw - pl + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const s = ((b * h + iy) * w + ix) * c;
            dst.set(src.subarray(s, s + c), o);
          }
        }
      }
    }
  }
  return out;
}

function channelsLastOnly(name: string, fn: KernelFn, fallback: (n: string) => KernelFn): KernelFn {
  return (args) => {
    const fmt = args.attrs.dataFormat;
    if (fmt !== undefined && fmt !== "NHWC" && fmt !== "channelsLast") return fallback(name)(args);
    return fn(args);
  };
}

/** Installs the composed gradient kernels on the wasm backend. */
export function installWasmTrainingKernels(): KernelOverride {
  return overrideKernels("wasm", (fallback) => ({
    MaxPoolGrad: maxPoolGradTs,
    Slice: (args) => sliceTs(args, fallback),
    Tile: (args) => tileTs(args, fallback),
    GradlabIm2Col: im2colTs,
    Conv2DBackpropFilter: channelsLastOnly(
      "Conv2DBackpropFilter",
      conv2dBackpropFilterComposed,
      fallback,
    ),
    Conv2DBackpropInput: channelsLastOnly(
      "Conv2DBackpropInput",
      conv2dBackpropInputComposed,
      fallback,
    ),
  }));
}
