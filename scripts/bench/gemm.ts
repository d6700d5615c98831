/**
 * Wgemm: the native backend's own packed GEMM (matrix products and the implicit-GEMM
 * convolutions) against a system BLAS's `cblas_sgemm` on exactly the products that W1, W3, W3g and
 * W4 make. The shapes are recorded by running one quick pass of each workload with the native
 * library's entry points wrapped; then every shape is timed both ways, interleaved.
 *
 * What the BLAS side does per recorded call:
 * - matmul: one `cblas_sgemm` per batch entry, plus the bias/activation epilogue in a plain loop;
 * - conv forward: the native `im2col` then one `cblas_sgemm` [n·oh·ow × kh·kw·ci]·[kh·kw·ci × co];
 * - conv filter gradient: `im2col` then `cblas_sgemm` colsᵀ·dy;
 * - conv input gradient: only `cblas_sgemm` dy·Wᵀ into the column matrix, *without* the col2im
 *   scatter it still needs — a lower bound of the BLAS route, so a win of the own kernel there is
 *   conservative.
 *
 * @module
 */

import { loadedNativeLib } from "../../lib/backend/select.ts";
import type { ConvGeometry, NativeLib } from "../../lib/backend/native/ffi.ts";
import type { SystemBlas } from "../../lib/backend/native/blas.ts";
import { median } from "./timing.ts";
import type { BenchLine } from "./result.ts";
import { dateUtc } from "./result.ts";

/** One recorded product: its kind, shape and how many times the workloads made it. */
export interface GemmCall {
  kind: "matmul" | "conv" | "convFilter" | "convInput";
  /** matmul: batch, m, n, k and flags; conv*: the geometry */
  shape: {
    batch?: number;
    m?: number;
    n?: number;
    k?: number;
    transA?: boolean;
    transB?: boolean;
    epilogue?: boolean;
    g?: ConvGeometry;
  };
  /** which workload made it first */
  workload: string;
  count: number;
}

function keyOf(c: Omit<GemmCall, "count" | "workload">): string {
  return JSON.stringify([c.kind, c.shape]);
}

/**
 * Runs `passes` (each a named workload pass) with the native library's product entry points
 * wrapped, and returns the distinct products they made with their counts.
 */
export async function recordGemmCalls(
  passes: { workload: string; run: () => Promise<unknown> }[],
): Promise<GemmCall[]> {
  const lib = loadedNativeLib();
  if (!lib) throw new Error("Wgemm needs the native backend");
  const seen = new Map<string, GemmCall>();
  let current = "";
  const note = (c: Omit<GemmCall, "count" | "workload">) => {
    const k = keyOf(c);
    const e = seen.get(k);
    if (e) e.count++;
    else seen.set(k, { ...c, workload: current, count: 1 });
  };
  const orig = {
    matmul: lib.matmul,
    conv2d: lib.conv2d,
    conv2dBackpropFilter: lib.conv2dBackpropFilter,
    conv2dBackpropInput: lib.conv2dBackpropInput,
  };
  lib.matmul = (a, b, c, s) => {
    note({
      kind: "matmul",
      shape: {
        batch: s.batch,
        m: s.m,
        n: s.n,
        k: s.k,
        transA: s.transA,
        transB: s.transB,
        epilogue: !!(s.bias || s.act),
      },
    });
    orig.matmul(a, b, c, s);
  };
  lib.conv2d = (x, f, y, g, bias, act, alpha) => {
    note({ kind: "conv", shape: { g: { ...g } } });
    orig.conv2d(x, f, y, g, bias, act, alpha);
  };
  lib.conv2dBackpropFilter = (x, dy, dw, g) => {
    note({ kind: "convFilter", shape: { g: { ...g } } });
    orig.conv2dBackpropFilter(x, dy, dw, g);
  };
  lib.conv2dBackpropInput = (dy, f, dx, g) => {
    note({ kind: "convInput", shape: { g: { ...g } } });
    orig.conv2dBackpropInput(dy, f, dx, g);
  };
  try {
    for (const p of passes) {
      current = p.workload;
      await p.run();
    }
  } finally {
    Object.assign(lib, orig);
  }
  return [...seen.values()];
}

function randomBuf(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** The two ways of making one recorded product, on fixed random buffers. */
function implementations(
  call: GemmCall,
  lib: NativeLib,
  blas: SystemBlas,
): { own: () => void; blas: () => void; madds: number } {
  if (call.kind === "matmul") {
    const { batch = 1, m = 1, n = 1, k = 1, transA = false, transB = false, epilogue } = call.shape;
    const a = randomBuf(batch * m * k, 1), b = randomBuf(batch * k * n, 2);
    const c = new Float32Array(batch * m * n);
    const bias = epilogue ? randomBuf(n, 3) : null;
    const views = Array.from({ length: batch }, (_, i) => ({
      a: a.subarray(i * m * k, (i + 1) * m * k),
      b: b.subarray(i * k * n, (i + 1) * k * n),
      c: c.subarray(i * m * n, (i + 1) * m * n),
    }));
    return {
      madds: batch * m * n * k,
      own: () =>
        lib.matmul(a, b, c, {
          batch,
          m,
          n,
          k,
          transA,
          transB,
          aStride: m * k,
          bStride: k * n,
          bias,
          act: epilogue ? 1 : 0,
        }),
      blas: () => {
        for (const v of views) {
          blas.sgemm(v.a, v.b, v.c, m, n, k, transA, transB);
          if (bias) {
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                const t = v.c[i * n + j] + bias[j];
                v.c[i * n + j] = t > 0 ? t : 0;
              }
            }
          }
        }
      },
    };
  }
  const g = call.shape.g!;
  const rows = g.n * g.oh * g.ow, kk = g.kh * g.kw * g.ci;
  const x = randomBuf(g.n * g.h * g.w * g.ci, 4), f = randomBuf(kk * g.co, 5);
  const y = randomBuf(rows * g.co, 6), dx = new Float32Array(x.length);
  const cols = new Float32Array(rows * kk), dw = new Float32Array(f.length);
  const madds = rows * kk * g.co;
  if (call.kind === "conv") {
    return {
      madds,
      own: () => lib.conv2d(x, f, y, g),
      blas: () => {
        lib.im2col(x, cols, g);
        blas.sgemm(cols, f, y, rows, g.co, kk, false, false);
      },
    };
  }
  if (call.kind === "convFilter") {
    return {
      madds,
      own: () => lib.conv2dBackpropFilter(x, y, dw, g),
      blas: () => {
        lib.im2col(x, cols, g);
        blas.sgemm(cols, y, dw, kk, g.co, rows, true, false);
      },
    };
  }
  return {
    madds,
    own: () => lib.conv2dBackpropInput(y, f, dx, g),
    blas: () => blas.sgemm(y, f, cols, rows, kk, g.co, false, true), // col2im not counted
  };
}

/** Blocks the thread for `ms` milliseconds without spinning. */
function idle(ms: number) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Seconds per call: the median of `repeats` windows of at least `minS` seconds. */
function secondsPerCall(fn: () => void, minS: number, repeats: number): number {
  const per: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let n = 0;
    const t0 = performance.now();
    let el = 0;
    do {
      fn();
      n++;
      el = (performance.now() - t0) / 1000;
    } while (el < minS);
    per.push(el / n);
  }
  return median(per);
}

/**
 * Times every recorded product both ways at `threads` threads (the own kernels and the BLAS set
 * to the same count), shape by shape: own, then BLAS. One line per product.
 */
export function timeGemmCalls(
  calls: GemmCall[],
  blas: SystemBlas,
  threads: number,
  o: { minS?: number; repeats?: number } = {},
): BenchLine[] {
  const lib = loadedNativeLib();
  if (!lib) throw new Error("Wgemm needs the native backend");
  lib.setThreads(threads);
  blas.setThreads(threads);
  const minS = o.minS ?? 0.05, repeats = o.repeats ?? 3;
  return calls.map((call) => {
    const impl = implementations(call, lib, blas);
    // The own kernels first, after a pause: OpenBLAS's worker threads spin for a while after each
    // call (about 2^28 cycles by default) and would take the second core from the own kernels'
    // threads, whose OpenMP workers sleep at once (OMP_WAIT_POLICY=passive).
    idle(300);
    impl.own();
    const ownS = secondsPerCall(impl.own, minS, repeats);
    impl.blas();
    const blasS = secondsPerCall(impl.blas, minS, repeats);
    return {
      workload: "Wgemm",
      model: call.workload,
      backend: "native",
      threads,
      batch: call.shape.batch ?? call.shape.g?.n ?? 1,
      variant: call.kind,
      date_utc: dateUtc(),
      shape: call.shape,
      calls_per_workload_pass: call.count,
      madds: impl.madds,
      own_s: ownS,
      blas: blas.name,
      blas_s: blasS,
      // > 1: the BLAS takes longer than the own kernel
      blas_over_own: blasS / ownS,
    };
  });
}
