/**
 * Deno FFI bindings to the native kernel library (see `kernels.c` for the math).
 *
 * Every pointer argument is a Float32Array view; Deno passes its backing store without copying,
 * so the kernels read and write TF.js wasm tensors in place.
 *
 * @module
 */

import { UserError } from "../../util/errors.ts";

const i32 = "i32" as const;
const buf = "buffer" as const;

const SYMBOLS = {
  gl_set_threads: { parameters: [i32], result: i32 },
  gl_set_winograd: { parameters: [i32], result: i32 },
  gl_winograd_calls: { parameters: [], result: "f64" },
  gl_take_error: { parameters: [buf, i32], result: i32 },
  gl_scratch_probe: { parameters: ["f64"], result: i32 },
  gl_max_threads: { parameters: [], result: i32 },
  gl_vector_width: { parameters: [], result: i32 },
  gl_matmul: {
    // a, b, c, batch, M, N, K, transA, transB, aStride, bStride, bias, act, alpha
    parameters: [buf, buf, buf, i32, i32, i32, i32, i32, i32, i32, i32, buf, i32, "f32"],
    result: "void",
  },
  gl_conv2d: {
    // x, f, y, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pl, bias, act, alpha
    parameters: [buf, buf, buf, ...Array(15).fill(i32), buf, i32, "f32"],
    result: "void",
  },
  gl_conv2d_backprop_input: {
    // dy, f, dx, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pl
    parameters: [buf, buf, buf, ...Array(15).fill(i32)],
    result: "void",
  },
  gl_conv2d_backprop_input_dirs: {
    // dy, f, dx, D, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pl → 1 if sparse
    parameters: [buf, buf, buf, ...Array(16).fill(i32)],
    result: i32,
  },
  gl_conv2d_backprop_filter: {
    // x, dy, dw, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pl
    parameters: [buf, buf, buf, ...Array(15).fill(i32)],
    result: "void",
  },
  gl_max_pool_grad_dirs: {
    // x, dy, dx, D, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl, positive
    parameters: [buf, buf, buf, ...Array(14).fill(i32)],
    result: "void",
  },
  gl_binary_dirs: { parameters: [buf, buf, buf, "i64", "i64", "i64", i32], result: "void" },
  gl_max_pool_grad: {
    // x, dy, dx, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl
    parameters: [buf, buf, buf, ...Array(12).fill(i32)],
    result: "void",
  },
  gl_avg_pool_grad: {
    // dy, dx, n, h, w, c, oh, ow, kh, kw, sh, sw
    parameters: [buf, buf, ...Array(10).fill(i32)],
    result: "void",
  },
  gl_sum_rows: { parameters: [buf, buf, i32, i32], result: "void" },
  gl_im2col: {
    // x, out, n, h, w, c, kh, kw, oh, ow, sh, sw, pt, pl
    parameters: [buf, buf, ...Array(12).fill(i32)],
    result: "void",
  },
  gl_slice: { parameters: [buf, buf, i32, buf, buf, buf], result: "void" },
  // x, out, rank, xs, os, before, value
  gl_pad: { parameters: [buf, buf, i32, buf, buf, buf, "f32"], result: "void" },
  gl_tile: { parameters: [buf, buf, i32, buf, buf], result: "void" },
  gl_sgd_update: {
    // p, g, v, p_out, v_out, n, lr, mu, wd, nesterov
    parameters: [buf, buf, buf, buf, buf, "i64", "f32", "f32", "f32", i32],
    result: "void",
  },
  gl_rmsprop_update: {
    // p, g, s, p_out, s_out, n, lr, rho, eps
    parameters: [buf, buf, buf, buf, buf, "i64", "f32", "f32", "f32"],
    result: "void",
  },
  gl_bn_forward: {
    // x, gamma, beta, y, mean, var, rstd, rows, c, eps
    parameters: [buf, buf, buf, buf, buf, buf, buf, "i64", i32, "f32"],
    result: "void",
  },
  gl_bn_backward: {
    // x, dy, gamma, mean, rstd, dx, dgamma, dbeta, rows, c
    parameters: [buf, buf, buf, buf, buf, buf, buf, buf, "i64", i32],
    result: "void",
  },
  gl_copy_block: { parameters: [buf, "i64", buf, "i64", "i64", "i64"], result: "void" },
  gl_sparsify: { parameters: [buf, i32, "i64", i32, buf, buf, "f64"], result: "i64" },
  gl_pe_conv: {
    // x, delta, out, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, pt, pl, D, P, koff, boff → 1 if sparse
    parameters: [buf, buf, buf, ...Array(14).fill(i32), "i64", "i64", "i64"],
    result: i32,
  },
  gl_pe_conv_pooled: {
    // x, z, dyp, out, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, pt, pl,
    // ph, pw, pkh, pkw, psh, psw, ppt, ppl, positive, D, P, koff, boff
    parameters: [buf, buf, buf, buf, ...Array(23).fill(i32), "i64", "i64", "i64"],
    result: "void",
  },
  gl_pe_dense: {
    // a, delta, out, n, in, out, D, P, koff, boff
    parameters: [buf, buf, buf, i32, i32, i32, i32, "i64", "i64", "i64"],
    result: "void",
  },
  gl_sum_cols: { parameters: [buf, buf, i32, i32], result: "void" },
  // a, b, out, n, b_len, op
  gl_binary: { parameters: [buf, buf, buf, "i64", "i64", i32], result: "void" },
  // x, out, n, alpha
  gl_step: { parameters: [buf, buf, "i64", "f32"], result: "void" },
  gl_gunn_layer_forward: {
    // inputs (pointer table), outputs (pointer table), n, h, w, C, S, gradual, eps
    parameters: [buf, buf, i32, i32, i32, i32, i32, i32, "f32"],
    result: "void",
  },
  gl_gunn_layer_backward: {
    // inputs (pointer table), outputs (pointer table), n, h, w, C, S, gradual
    parameters: [buf, buf, i32, i32, i32, i32, i32, i32],
    result: "void",
  },
  gl_gunn_block_forward: {
    // inputs (pointer table), outputs (pointer table), n, h, w, C, S, eps
    parameters: [buf, buf, i32, i32, i32, i32, i32, "f32"],
    result: "void",
  },
  gl_gunn_block_backward: {
    // inputs (pointer table), outputs (pointer table), n, h, w, C, S
    parameters: [buf, buf, i32, i32, i32, i32, i32],
    result: "void",
  },
  gl_count_rows: { parameters: [buf, i32, "i64", buf], result: "i64" },
  gl_scale_entries: {
    // idx, idx32, val, n, min, max, root
    parameters: [buf, i32, buf, "i64", buf, buf, i32],
    result: "void",
  },
  gl_compress_rows: {
    // rows, nrows, P, idx32, idx, val, rowStart
    parameters: [buf, i32, "i64", i32, buf, buf, buf],
    result: "void",
  },
  gl_gradnet_hidden: {
    // idx, val, rowStart, R, idx32, nb, bounds, hidden, theta, wOff, bOff, hid
    parameters: [buf, buf, buf, i32, i32, i32, buf, buf, buf, buf, buf, buf],
    result: i32,
  },
  gl_read_feature_rows: {
    // path, B, rows, start, count, wide, idx, val, rowStart, P, min, max, scale — on a thread
    // of its own: it runs while a GradNet step holds the library
    parameters: [buf, i32, buf, buf, buf, buf, buf, buf, buf, "i64", buf, buf, i32],
    result: i32,
    nonblocking: true,
  },
  gl_gradnet_step: {
    // idx, val, rowStart, B, idx32, nb, bounds, hidden, theta, wOff, bOff, oOff, C, targets, lr, out
    parameters: [buf, buf, buf, i32, i32, i32, buf, buf, buf, buf, buf, buf, i32, buf, "f32", buf],
    result: i32,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Sparse rows (back to back) and GradNet's layout, as the native GradNet kernels take them. */
export interface GradNetNativeArgs {
  idx: Uint16Array | Uint32Array;
  val: Float32Array;
  /** rows r's entries are rowStart[r] … rowStart[r + 1] − 1 */
  rowStart: Int32Array;
  rows: number;
  /** input boundaries of the blocks, hidden units per block */
  bounds: Int32Array;
  hidden: Int32Array;
  /** all parameters in one array, and where each block's weights and biases start */
  theta: Float32Array;
  wOff: Int32Array;
  bOff: Int32Array;
}

/** The leading arguments of the native GradNet kernels (rows, layout, parameters). */
function gradnetArgs(a: GradNetNativeArgs) {
  return [
    a.idx as Uint16Array<ArrayBuffer>,
    a.val as Float32Array<ArrayBuffer>,
    a.rowStart as Int32Array<ArrayBuffer>,
    a.rows,
    a.idx instanceof Uint32Array ? 1 : 0,
    a.hidden.length,
    a.bounds as Int32Array<ArrayBuffer>,
    a.hidden as Int32Array<ArrayBuffer>,
    a.theta as Float32Array<ArrayBuffer>,
    a.wOff as Int32Array<ArrayBuffer>,
    a.bOff as Int32Array<ArrayBuffer>,
  ] as const;
}

/** Pooling geometry, NHWC. */
export interface PoolGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
}

/** Activation codes understood by the native epilogues. */
export const NativeActivation = { linear: 0, relu: 1, relu6: 2, leakyrelu: 3 } as const;

/** Convolution geometry, NHWC input `[n,h,w,ci]`, HWIO filter `[kh,kw,ci,co]`. */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  ci: number;
  kh: number;
  kw: number;
  co: number;
  oh: number;
  ow: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** padding before the first row / column; the other side follows from the output size */
  pt: number;
  pl: number;
}

/** The loaded library, with typed wrappers. */
export interface NativeLib {
  path: string;
  /** how many times each entry point has run (tests use it to prove a kernel ran natively) */
  calls: Record<string, number>;
  setThreads(n: number): number;
  /**
   * Whether 3×3 stride-1 convolutions of at least 16 channels each side use Winograd F(2×2, 3×3)
   * (the default) or the direct kernels; returns the previous setting (tests compare the two).
   */
  setWinograd(on: boolean): boolean;
  /** convolution passes (forward, input or filter gradient) run by Winograd so far, from this thread */
  winogradCalls(): number;
  maxThreads(): number;
  vectorWidth(): number;
  matmul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    s: {
      batch: number;
      m: number;
      n: number;
      k: number;
      transA: boolean;
      transB: boolean;
      aStride: number;
      bStride: number;
      bias?: Float32Array | null;
      act?: number;
      alpha?: number;
    },
  ): void;
  conv2d(
    x: Float32Array,
    f: Float32Array,
    y: Float32Array,
    g: ConvGeometry,
    bias?: Float32Array | null,
    act?: number,
    alpha?: number,
  ): void;
  conv2dBackpropInput(dy: Float32Array, f: Float32Array, dx: Float32Array, g: ConvGeometry): void;
  /**
   * The input gradient of D directions per example (dy, dx [g.n = n·D, …]): over the nonzero
   * (position, channel) pairs of each example's dy when they are few, else the dense kernel.
   * Returns whether the sparse kernel ran.
   */
  conv2dBackpropInputDirs(
    dy: Float32Array,
    f: Float32Array,
    dx: Float32Array,
    g: ConvGeometry,
    D: number,
  ): boolean;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, g: ConvGeometry): void;
  maxPoolGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, g: PoolGeometry): void;
  /**
   * the max-pool gradient of D directions per example: dy, dx [n·D, …], x [n, …]; with
   * `positive`, windows whose maximum is not above 0 pass nothing (a ReLU's derivative folded in)
   */
  maxPoolGradDirs(
    x: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    g: PoolGeometry,
    D: number,
    positive?: boolean,
  ): void;
  /** out[i, d, :] = a[i, d, :] (op) b[i, 0, :] for a [n, D, m] (op: 0 add, 1 subtract, 2 multiply) */
  binaryDirs(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    shape: [number, number, number],
    op: 0 | 1 | 2,
  ): void;
  /** average-pool gradient for windows wholly inside the input (no padding) */
  avgPoolGrad(dy: Float32Array, dx: Float32Array, g: PoolGeometry): void;
  /** out[cols] = Σ_rows x[rows, cols] */
  sumRows(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /** out[rows] = Σ_cols x[rows, cols] */
  sumCols(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /** out = a (op) b element-wise; b of one value broadcasts (op: 0 add, 1 subtract, 2 multiply) */
  binary(a: Float32Array, b: Float32Array, out: Float32Array, op: 0 | 1 | 2): void;
  /** out = x > 0 ? 1 : alpha (NaN stays NaN) */
  step(x: Float32Array, out: Float32Array, alpha: number): void;
  /** patches [n, oh·ow, kh·kw·c] of an NHWC input (see kernels.c) */
  im2col(x: Float32Array, out: Float32Array, g: ConvGeometry): void;
  /** a block of 4-byte elements: out = x[begin : begin + size] */
  slice(x: Float32Array, out: Float32Array, shape: number[], begin: number[], size: number[]): void;
  /** constant padding: out (shape outShape) = value, with x (shape) placed at offset before */
  pad(
    x: Float32Array,
    out: Float32Array,
    shape: number[],
    outShape: number[],
    before: number[],
    value: number,
  ): void;
  /** the nonzero entries of dense rows [count, P] as (index, value) pairs and row starts */
  compressRows(
    rows: Float32Array,
    P: number,
  ): { index: Uint16Array | Uint32Array; value: Float32Array; rowStart: Uint32Array };
  /**
   * scale (root false) or scale_power with exponent 0.5 (root true) on sparse entries in place,
   * with the arithmetic of lib/gradients/normalize.ts (see kernels.c)
   */
  scaleEntries(
    index: Uint16Array | Uint32Array,
    value: Float32Array,
    min: Float32Array,
    max: Float32Array,
    root: boolean,
  ): void;
  /**
   * Reads rows of a GradNet feature file (lib/gradnet/file_cache.ts) into back-to-back
   * `idx`/`val` with row starts, normalised by `scale` (null: raw), on a thread of its own; the
   * arrays must stay untouched until the promise settles. Rejects with the OS error.
   */
  readFeatureRows(
    path: string,
    rows: Int32Array,
    file: { size: number; start: Float64Array; count: Uint32Array; wide: Uint8Array },
    out: { idx: Uint32Array; val: Float32Array; rowStart: Int32Array },
    scale: { min: Float32Array; max: Float32Array; root: boolean } | null,
  ): Promise<void>;
  /** GradNet's hidden layers of sparse rows into hid [rows, H] (see kernels.c) */
  gradnetHidden(a: GradNetNativeArgs, hid: Float32Array): void;
  /**
   * One plain-SGD step of GradNet on sparse rows, in place on `a.theta` (Wo at oOff[0], bo at
   * oOff[1]); returns the summed loss and the rows predicted right.
   */
  gradnetStep(
    a: GradNetNativeArgs,
    oOff: Int32Array,
    classes: number,
    targets: Int32Array,
    lr: number,
  ): { loss: number; correct: number };
  /** per-block top-q % sparsification of rows [count, P] in place; returns entries kept */
  sparsify(rows: Float32Array, P: number, offsets: number[], sizes: number[], q: number): number;
  /** one SGD step (see kernels.c); `v` and `vOut` null without momentum */
  sgdUpdate(
    p: Float32Array,
    g: Float32Array,
    v: Float32Array | null,
    pOut: Float32Array,
    vOut: Float32Array | null,
    o: { lr: number; momentum: number; weightDecay: number; nesterov: boolean },
  ): void;
  /** one RMSProp step (see kernels.c) */
  rmspropUpdate(
    p: Float32Array,
    g: Float32Array,
    s: Float32Array,
    pOut: Float32Array,
    sOut: Float32Array,
    o: { lr: number; rho: number; epsilon: number },
  ): void;
  /** training-mode batch norm of x [rows, c]: y, and the batch mean, variance, 1/√(var + ε) */
  bnForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: { y: Float32Array; mean: Float32Array; variance: Float32Array; rstd: Float32Array },
    rows: number,
    c: number,
    epsilon: number,
  ): void;
  /** its gradients, x̂ recomputed from x, the mean and rstd */
  bnBackward(
    x: Float32Array,
    dy: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    out: { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array },
    rows: number,
    c: number,
  ): void;
  /** dst[r·dld + c] = src[r·sld + c] for `rows` rows of `cols` 4-byte elements */
  copyBlock(
    src: Float32Array,
    sld: number,
    dst: Float32Array,
    dld: number,
    rows: number,
    cols: number,
  ): void;
  /** out = x tiled `reps` times along each axis (4-byte elements) */
  tile(x: Float32Array, out: Float32Array, shape: number[], reps: number[]): void;
  /** per-example conv kernel (and bias) gradients into rows of out [n·D, P] (see kernels.c) */
  perExampleConv(
    x: Float32Array,
    delta: Float32Array,
    out: Float32Array,
    g: ConvGeometry,
    o: { D: number; P: number; kernelOffset: number; biasOffset: number },
  ): void;
  /**
   * The same for a conv layer with a max-pool above it, from the pool's output gradient dyp
   * [n·D, ph, pw, co] and its input z [n, oh, ow, co] (the layer's output): the pool's winners
   * take the place of the layer's dense deltas (kernels.c, gl_pe_conv_pooled)
   */
  perExampleConvPooled(
    x: Float32Array,
    z: Float32Array,
    dyp: Float32Array,
    out: Float32Array,
    g: ConvGeometry,
    pool: PoolGeometry,
    o: { D: number; P: number; kernelOffset: number; biasOffset: number; positive: boolean },
  ): void;
  /** per-example dense kernel (and bias) gradients into rows of out [n·D, P] */
  perExampleDense(
    a: Float32Array,
    delta: Float32Array,
    out: Float32Array,
    o: {
      n: number;
      in: number;
      out: number;
      D: number;
      P: number;
      kernelOffset: number;
      biasOffset: number;
    },
  ): void;
  /**
   * A whole GUNN layer in training mode, its state updated in place (kernels.c,
   * gl_gunn_layer_forward): `inputs` x, then 12 weights per unit; `outputs` y, then h1p, a1, h2,
   * a2, h3, stats per unit.
   */
  gunnLayerForward(
    inputs: Float32Array[],
    outputs: Float32Array[],
    g: GunnLayerGeometry,
    epsilon: number,
  ): void;
  /**
   * Its gradients (gl_gunn_layer_backward): `inputs` dy, x, y, then 14 per unit; `outputs` dx,
   * then 12 weight gradients per unit.
   */
  gunnLayerBackward(inputs: Float32Array[], outputs: Float32Array[], g: GunnLayerGeometry): void;
  /**
   * A gradually updated block whose units replace their segment (kernels.c,
   * gl_gunn_block_forward): `inputs` x, then kernel, γ, β per unit; `outputs` y, acts, stats.
   */
  gunnBlockForward(
    inputs: Float32Array[],
    outputs: Float32Array[],
    g: GunnLayerGeometry,
    epsilon: number,
  ): void;
  /**
   * Its gradients (gl_gunn_block_backward): `inputs` dy, x, acts, stats, then kernel, γ per unit;
   * `outputs` dx, then dkernel, dγ, dβ per unit.
   */
  gunnBlockBackward(inputs: Float32Array[], outputs: Float32Array[], g: GunnLayerGeometry): void;
  close(): void;
  /**
   * Grows a scratch buffer to `floats` floats and says whether that worked; a failure is reported
   * like any other (a NativeMemoryError). For the tests of that path.
   */
  scratchProbe(floats: number): boolean;
}

/** Shape of a GUNN layer: NHWC input [n, h, w, c] in `segments` segments, gradual or not. */
export interface GunnLayerGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  segments: number;
  gradual: boolean;
}

// The GUNN entry points' leading arguments: pointer tables (their arrays must stay reachable
// until the call returns), then n, h, w, C, S (and, for layers, gradual).
function blockArgs(inputs: Float32Array[], outputs: Float32Array[], g: GunnLayerGeometry) {
  return [pointerTable(inputs), pointerTable(outputs), g.n, g.h, g.w, g.c, g.segments] as const;
}

function layerArgs(inputs: Float32Array[], outputs: Float32Array[], g: GunnLayerGeometry) {
  return [...blockArgs(inputs, outputs, g), g.gradual ? 1 : 0] as const;
}

/** A table of the arrays' addresses, for entry points that take many arrays. */
function pointerTable(arrays: Float32Array[]): BigUint64Array<ArrayBuffer> {
  return BigUint64Array.from(
    arrays,
    (a) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a as Buf))),
  );
}

/** An allocation inside the native kernels failed; the message names its size. */
export class NativeMemoryError extends UserError {
  override name = "NativeMemoryError";
}

// n, h, w, c, oh, ow, kh, kw, sh, sw: the pooling entry points' leading sizes
function poolArgs(g: PoolGeometry): number[] {
  return [g.n, g.h, g.w, g.c, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw];
}

function geometryArgs(g: ConvGeometry): number[] {
  return [g.n, g.h, g.w, g.ci, g.kh, g.kw, g.co, g.oh, g.ow, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl];
}

// Deno's FFI types want ArrayBuffer-backed views; wasm memory is one.
type Buf = Float32Array<ArrayBuffer>;
const asBuf = (a: Float32Array | null | undefined) => (a ?? null) as Buf | null;

/** Opens the shared library at `path`. */
export function openNativeLib(path: string): NativeLib {
  const lib = Deno.dlopen(path, SYMBOLS);
  const calls: Record<string, number> = {};
  const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);
  const s = lib.symbols;
  const api: NativeLib = {
    path,
    calls,
    setThreads: (n) => s.gl_set_threads(n),
    setWinograd: (on) => s.gl_set_winograd(on ? 1 : 0) !== 0,
    winogradCalls: () => s.gl_winograd_calls() as number,
    maxThreads: () => s.gl_max_threads(),
    vectorWidth: () => s.gl_vector_width(),
    matmul(a, b, c, o) {
      count("matmul");
      s.gl_matmul(
        asBuf(a),
        asBuf(b),
        asBuf(c),
        o.batch,
        o.m,
        o.n,
        o.k,
        o.transA ? 1 : 0,
        o.transB ? 1 : 0,
        o.aStride,
        o.bStride,
        asBuf(o.bias),
        o.act ?? 0,
        o.alpha ?? 0,
      );
    },
    conv2d(x, f, y, g, bias, act = 0, alpha = 0) {
      count("conv2d");
      // deno-lint-ignore no-explicit-any
      (s.gl_conv2d as any)(
        asBuf(x),
        asBuf(f),
        asBuf(y),
        ...geometryArgs(g),
        asBuf(bias),
        act,
        alpha,
      );
    },
    conv2dBackpropInput(dy, f, dx, g) {
      count("conv2dBackpropInput");
      // deno-lint-ignore no-explicit-any
      (s.gl_conv2d_backprop_input as any)(asBuf(dy), asBuf(f), asBuf(dx), ...geometryArgs(g));
    },
    conv2dBackpropInputDirs(dy, f, dx, g, D) {
      const [n, ...rest] = geometryArgs(g);
      // deno-lint-ignore no-explicit-any
      const sparse = (s.gl_conv2d_backprop_input_dirs as any)(
        asBuf(dy),
        asBuf(f),
        asBuf(dx),
        D,
        n / D,
        ...rest,
      ) === 1;
      count(sparse ? "conv2dBackpropInputSparse" : "conv2dBackpropInput");
      return sparse;
    },
    conv2dBackpropFilter(x, dy, dw, g) {
      count("conv2dBackpropFilter");
      // deno-lint-ignore no-explicit-any
      (s.gl_conv2d_backprop_filter as any)(asBuf(x), asBuf(dy), asBuf(dw), ...geometryArgs(g));
    },
    avgPoolGrad(dy, dx, g) {
      count("avgPoolGrad");
      // deno-lint-ignore no-explicit-any
      (s.gl_avg_pool_grad as any)(asBuf(dy), asBuf(dx), ...poolArgs(g));
    },
    maxPoolGrad(x, dy, dx, g) {
      count("maxPoolGrad");
      // deno-lint-ignore no-explicit-any
      (s.gl_max_pool_grad as any)(asBuf(x), asBuf(dy), asBuf(dx), ...poolArgs(g), g.pt, g.pl);
    },
    maxPoolGradDirs(x, dy, dx, g, D, positive = false) {
      count("maxPoolGradDirs");
      const [n, ...rest] = poolArgs(g);
      // deno-lint-ignore no-explicit-any
      (s.gl_max_pool_grad_dirs as any)(
        asBuf(x),
        asBuf(dy),
        asBuf(dx),
        D,
        n,
        ...rest,
        g.pt,
        g.pl,
        positive ? 1 : 0,
      );
    },
    binaryDirs(a, b, out, [n, D, m], op) {
      count("binaryDirs");
      s.gl_binary_dirs(asBuf(a), asBuf(b), asBuf(out), BigInt(n), BigInt(D), BigInt(m), op);
    },
    sumRows(x, out, rows, cols) {
      count("sumRows");
      s.gl_sum_rows(asBuf(x), asBuf(out), rows, cols);
    },
    sumCols(x, out, rows, cols) {
      count("sumCols");
      s.gl_sum_cols(asBuf(x), asBuf(out), rows, cols);
    },
    binary(a, b, out, op) {
      count("binary");
      s.gl_binary(asBuf(a), asBuf(b), asBuf(out), BigInt(out.length), BigInt(b.length), op);
    },
    step(x, out, alpha) {
      count("step");
      s.gl_step(asBuf(x), asBuf(out), BigInt(out.length), alpha);
    },
    im2col(x, out, g) {
      count("im2col");
      // deno-lint-ignore no-explicit-any
      (s.gl_im2col as any)(
        asBuf(x),
        asBuf(out),
        g.n,
        g.h,
        g.w,
        g.ci,
        g.kh,
        g.kw,
        g.oh,
        g.ow,
        g.sh,
        g.sw,
        g.pt,
        g.pl,
      );
    },
    sgdUpdate(p, g, v, pOut, vOut, o) {
      count("sgdUpdate");
      s.gl_sgd_update(
        asBuf(p),
        asBuf(g),
        asBuf(v),
        asBuf(pOut),
        asBuf(vOut),
        BigInt(p.length),
        o.lr,
        o.momentum,
        o.weightDecay,
        o.nesterov ? 1 : 0,
      );
    },
    rmspropUpdate(p, g, ms, pOut, sOut, o) {
      count("rmspropUpdate");
      s.gl_rmsprop_update(
        asBuf(p),
        asBuf(g),
        asBuf(ms),
        asBuf(pOut),
        asBuf(sOut),
        BigInt(p.length),
        o.lr,
        o.rho,
        o.epsilon,
      );
    },
    bnForward(x, gamma, beta, o, rows, c, epsilon) {
      count("bnForward");
      s.gl_bn_forward(
        asBuf(x),
        asBuf(gamma),
        asBuf(beta),
        asBuf(o.y),
        asBuf(o.mean),
        asBuf(o.variance),
        asBuf(o.rstd),
        BigInt(rows),
        c,
        epsilon,
      );
    },
    bnBackward(x, dy, gamma, mean, rstd, o, rows, c) {
      count("bnBackward");
      s.gl_bn_backward(
        asBuf(x),
        asBuf(dy),
        asBuf(gamma),
        asBuf(mean),
        asBuf(rstd),
        asBuf(o.dx),
        asBuf(o.dgamma),
        asBuf(o.dbeta),
        BigInt(rows),
        c,
      );
    },
    copyBlock(src, sld, dst, dld, rows, cols) {
      count("copyBlock");
      s.gl_copy_block(asBuf(src), BigInt(sld), asBuf(dst), BigInt(dld), BigInt(rows), BigInt(cols));
    },
    slice(x, out, shape, begin, size) {
      count("slice");
      const i32s = (a: number[]) => new Int32Array(a) as Int32Array<ArrayBuffer>;
      s.gl_slice(asBuf(x), asBuf(out), shape.length, i32s(shape), i32s(begin), i32s(size));
    },
    pad(x, out, shape, outShape, before, value) {
      count("pad");
      const i32s = (a: number[]) => new Int32Array(a) as Int32Array<ArrayBuffer>;
      s.gl_pad(
        asBuf(x),
        asBuf(out),
        shape.length,
        i32s(shape),
        i32s(outShape),
        i32s(before),
        value,
      );
    },
    compressRows(rows, P) {
      count("compress_rows");
      const nrows = rows.length / P;
      const rowStart = new Uint32Array(nrows + 1);
      const nnz = Number(
        s.gl_count_rows(asBuf(rows), nrows, BigInt(P), rowStart as Uint32Array<ArrayBuffer>),
      );
      const index = P <= 65536 ? new Uint16Array(nnz) : new Uint32Array(nnz);
      const value = new Float32Array(nnz);
      s.gl_compress_rows(
        asBuf(rows),
        nrows,
        BigInt(P),
        P <= 65536 ? 0 : 1,
        index as Uint16Array<ArrayBuffer>,
        asBuf(value),
        rowStart as Uint32Array<ArrayBuffer>,
      );
      return { index, value, rowStart };
    },
    scaleEntries(index, value, min, max, root) {
      count("scale_entries");
      if (index.length !== value.length) throw new RangeError("one index per value");
      s.gl_scale_entries(
        index as Uint16Array<ArrayBuffer>,
        index instanceof Uint32Array ? 1 : 0,
        asBuf(value),
        BigInt(value.length),
        asBuf(min),
        asBuf(max),
        root ? 1 : 0,
      );
    },
    async readFeatureRows(path, rows, file, out, scale) {
      count("read_feature_rows");
      // the C side trusts these bounds: check them here
      let entries = 0;
      for (const r of rows) {
        if (!(r >= 0 && r < file.count.length)) throw new RangeError(`feature row ${r} outside`);
        entries += file.count[r];
      }
      if (
        out.idx.length < entries || out.val.length < entries ||
        out.rowStart.length < rows.length + 1 || file.start.length < file.count.length ||
        file.wide.length < file.count.length ||
        (scale !== null && (scale.min.length < file.size || scale.max.length < file.size))
      ) {
        throw new RangeError(`readFeatureRows: output arrays smaller than ${entries} entries`);
      }
      const cPath = new TextEncoder().encode(path + "\0");
      const none = new Float32Array(1);
      const r = await s.gl_read_feature_rows(
        cPath,
        rows.length,
        rows as Int32Array<ArrayBuffer>,
        file.start as Float64Array<ArrayBuffer>,
        file.count as Uint32Array<ArrayBuffer>,
        file.wide as Uint8Array<ArrayBuffer>,
        out.idx as Uint32Array<ArrayBuffer>,
        asBuf(out.val),
        out.rowStart as Int32Array<ArrayBuffer>,
        BigInt(file.size),
        asBuf(scale?.min ?? none),
        asBuf(scale?.max ?? none),
        scale === null ? 0 : scale.root ? 2 : 1,
      );
      if (r !== 0) throw new Error(`${path}: reading feature rows failed (errno ${-r})`);
    },
    gradnetHidden(a, hid) {
      count("gradnet_hidden");
      const r = s.gl_gradnet_hidden(...gradnetArgs(a), asBuf(hid));
      if (r !== 0) throw new RangeError(`gradnet_hidden: ${a.hidden.length} blocks (at most 64)`);
    },
    gradnetStep(a, oOff, classes, targets, lr) {
      count("gradnet_step");
      const out = new Float64Array(2);
      const r = s.gl_gradnet_step(
        ...gradnetArgs(a),
        oOff as Int32Array<ArrayBuffer>,
        classes,
        targets as Int32Array<ArrayBuffer>,
        lr,
        out,
      );
      if (r !== 0) {
        throw new RangeError(
          `gradnet_step: ${a.hidden.length} blocks (≤ 64), ${classes} classes (≤ 256), or out of memory`,
        );
      }
      return { loss: out[0], correct: out[1] };
    },
    sparsify(rows, P, offsets, sizes, q) {
      count("sparsify");
      const kept = s.gl_sparsify(
        asBuf(rows),
        rows.length / P,
        BigInt(P),
        offsets.length,
        new BigInt64Array(offsets.map(BigInt)) as BigInt64Array<ArrayBuffer>,
        new Int32Array(sizes) as Int32Array<ArrayBuffer>,
        q,
      );
      return Number(kept);
    },
    tile(x, out, shape, reps) {
      count("tile");
      s.gl_tile(
        asBuf(x),
        asBuf(out),
        shape.length,
        new Int32Array(shape) as Int32Array<ArrayBuffer>,
        new Int32Array(reps) as Int32Array<ArrayBuffer>,
      );
    },
    perExampleConv(x, delta, out, g, o) {
      count("perExampleConv");
      // deno-lint-ignore no-explicit-any
      const sparse = (s.gl_pe_conv as any)(
        asBuf(x),
        asBuf(delta),
        asBuf(out),
        g.n,
        g.h,
        g.w,
        g.ci,
        g.kh,
        g.kw,
        g.co,
        g.oh,
        g.ow,
        g.sh,
        g.sw,
        g.pt,
        g.pl,
        o.D,
        BigInt(o.P),
        BigInt(o.kernelOffset),
        BigInt(o.biasOffset),
      ) === 1;
      if (sparse) count("perExampleConvSparse");
    },
    perExampleConvPooled(x, z, dyp, out, g, p, o) {
      count("perExampleConvPooled");
      // deno-lint-ignore no-explicit-any
      (s.gl_pe_conv_pooled as any)(
        asBuf(x),
        asBuf(z),
        asBuf(dyp),
        asBuf(out),
        ...[g.n, g.h, g.w, g.ci, g.kh, g.kw, g.co, g.oh, g.ow, g.sh, g.sw, g.pt, g.pl],
        ...[p.oh, p.ow, p.kh, p.kw, p.sh, p.sw, p.pt, p.pl],
        o.positive ? 1 : 0,
        o.D,
        BigInt(o.P),
        BigInt(o.kernelOffset),
        BigInt(o.biasOffset),
      );
    },
    perExampleDense(a, delta, out, o) {
      count("perExampleDense");
      s.gl_pe_dense(
        asBuf(a),
        asBuf(delta),
        asBuf(out),
        o.n,
        o.in,
        o.out,
        o.D,
        BigInt(o.P),
        BigInt(o.kernelOffset),
        BigInt(o.biasOffset),
      );
    },
    gunnLayerForward(inputs, outputs, g, epsilon) {
      count("gunnLayerForward");
      s.gl_gunn_layer_forward(...layerArgs(inputs, outputs, g), epsilon);
    },
    gunnLayerBackward(inputs, outputs, g) {
      count("gunnLayerBackward");
      s.gl_gunn_layer_backward(...layerArgs(inputs, outputs, g));
    },
    gunnBlockForward(inputs, outputs, g, epsilon) {
      count("gunnBlockForward");
      s.gl_gunn_block_forward(...blockArgs(inputs, outputs, g), epsilon);
    },
    gunnBlockBackward(inputs, outputs, g) {
      count("gunnBlockBackward");
      s.gl_gunn_block_backward(...blockArgs(inputs, outputs, g));
    },
    close: () => lib.close(),
    scratchProbe: (floats) => s.gl_scratch_probe(floats) === 1,
  };
  // Every entry point that computes is followed by a look at the library's error slot: an
  // allocation that failed inside it becomes one clear error here rather than a crash.
  const message = new Uint8Array(200);
  const check = () => {
    if (s.gl_take_error(message as Uint8Array<ArrayBuffer>, message.length) === 0) return;
    const text = new TextDecoder().decode(message.subarray(0, message.indexOf(0)));
    throw new NativeMemoryError(`native kernels: ${text} (free memory, or use smaller batches)`);
  };
  const plain = new Set([
    "path",
    "calls",
    "setThreads",
    "setWinograd",
    "winogradCalls",
    "maxThreads",
    "vectorWidth",
    "close",
  ]);
  for (const [name, f] of Object.entries(api)) {
    if (plain.has(name) || typeof f !== "function") continue;
    (api as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const out = (f as (...a: unknown[]) => unknown)(...args);
      check();
      return out;
    };
  }
  return api;
}
