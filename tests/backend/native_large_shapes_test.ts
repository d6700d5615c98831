/**
 * The native kernels' threaded paths against float64 naive loops: every case is above its
 * kernel's threading threshold (products of ≥ 1e6 multiply-adds, filter gradients over ≥ 64 pixels
 * per thread, ≥ 2 row blocks per thread or columns split between threads) at the default thread
 * count (every core; CI has 2). Also: a failed allocation inside the kernels is one clear error.
 */

import assert from "node:assert";
import { initBackend, loadedNativeLib } from "../../lib/backend/select.ts";
import {
  type ConvGeometry,
  type NativeLib,
  NativeMemoryError,
} from "../../lib/backend/native/ffi.ts";
import { Rng } from "../../lib/util/rng.ts";

// The library's thread count is process-wide: changing it here would change, mid-run, the
// reductions of every other test module that `deno test --parallel` runs in this process (the
// concurrent-runtimes test caught it). So: the default count (every core; 2 on CI).
const THREADS = [0];

async function nativeLib(): Promise<NativeLib> {
  await initBackend("native", { log: null });
  const lib = loadedNativeLib();
  assert.ok(lib, "the native library did not load");
  return lib;
}

/** max |got − want| / (√terms · scale): float32 rounding of a sum of `terms` products is far below 1e-5. */
function assertClose(got: Float32Array, want: Float64Array, terms: number, what: string) {
  assert.equal(got.length, want.length);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.sqrt(terms));
  }
  assert.ok(worst < 1e-5, `${what}: max scaled error ${worst} (largest value ${scale})`);
}

function geometry(
  n: number,
  h: number,
  w: number,
  ci: number,
  k: number,
  co: number,
  o: { stride?: number; pad?: number; dilation?: number } = {},
): ConvGeometry {
  const s = o.stride ?? 1, p = o.pad ?? 0, d = o.dilation ?? 1;
  const oh = Math.floor((h + 2 * p - d * (k - 1) - 1) / s) + 1;
  const ow = Math.floor((w + 2 * p - d * (k - 1) - 1) / s) + 1;
  return { n, h, w, ci, kh: k, kw: k, co, oh, ow, sh: s, sw: s, dh: d, dw: d, pt: p, pl: p };
}

/** Calls visit(b, oy, ox, ky, kx, xIndex) for every in-image tap of every output pixel. */
function forEachTap(
  g: ConvGeometry,
  visit: (b: number, oy: number, ox: number, ky: number, kx: number, xAt: number) => void,
) {
  for (let b = 0; b < g.n; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        for (let ky = 0; ky < g.kh; ky++) {
          const iy = oy * g.sh - g.pt + ky * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          for (let kx = 0; kx < g.kw; kx++) {
            const ix = ox * g.sw - g.pl + kx * g.dw;
            if (ix < 0 || ix >= g.w) continue;
            visit(b, oy, ox, ky, kx, ((b * g.h + iy) * g.w + ix) * g.ci);
          }
        }
      }
    }
  }
}

function naiveConv(x: Float32Array, f: Float32Array, g: ConvGeometry): Float64Array {
  const y = new Float64Array(g.n * g.oh * g.ow * g.co);
  forEachTap(g, (b, oy, ox, ky, kx, xAt) => {
    const yAt = ((b * g.oh + oy) * g.ow + ox) * g.co;
    for (let c = 0; c < g.ci; c++) {
      const xv = x[xAt + c], fAt = ((ky * g.kw + kx) * g.ci + c) * g.co;
      for (let o = 0; o < g.co; o++) y[yAt + o] += xv * f[fAt + o];
    }
  });
  return y;
}

function naiveInputGrad(dy: Float32Array, f: Float32Array, g: ConvGeometry): Float64Array {
  const dx = new Float64Array(g.n * g.h * g.w * g.ci);
  forEachTap(g, (b, oy, ox, ky, kx, xAt) => {
    const yAt = ((b * g.oh + oy) * g.ow + ox) * g.co;
    for (let c = 0; c < g.ci; c++) {
      const fAt = ((ky * g.kw + kx) * g.ci + c) * g.co;
      let s = 0;
      for (let o = 0; o < g.co; o++) s += dy[yAt + o] * f[fAt + o];
      dx[xAt + c] += s;
    }
  });
  return dx;
}

/** Filter gradient of examples [from, to) of the batch. */
function naiveFilterGrad(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeometry,
  from = 0,
  to = g.n,
): Float64Array {
  const dw = new Float64Array(g.kh * g.kw * g.ci * g.co);
  forEachTap(g, (b, oy, ox, ky, kx, xAt) => {
    if (b < from || b >= to) return;
    const yAt = ((b * g.oh + oy) * g.ow + ox) * g.co;
    for (let c = 0; c < g.ci; c++) {
      const xv = x[xAt + c], fAt = ((ky * g.kw + kx) * g.ci + c) * g.co;
      for (let o = 0; o < g.co; o++) dw[fAt + o] += xv * dy[yAt + o];
    }
  });
  return dw;
}

Deno.test({
  name: "native large shapes: threaded GEMM paths (row blocks, split columns, batches) = float64",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lib = await nativeLib();
    const rng = new Rng(11);
    const cases = [
      // many row blocks per thread, bias + ReLU epilogue
      { batch: 1, m: 700, n: 130, k: 300, transA: false, transB: false, epilogue: true },
      // few rows (one row block): columns split between threads; bias lands on the right columns
      { batch: 1, m: 64, n: 700, k: 500, transA: false, transB: true, epilogue: true },
      { batch: 1, m: 64, n: 520, k: 300, transA: true, transB: false, epilogue: false },
      // batched small products: examples split between threads
      { batch: 5, m: 40, n: 50, k: 600, transA: false, transB: false, epilogue: false },
    ];
    for (const threads of THREADS) {
      for (const c of cases) {
        const a = rng.normals(c.batch * c.m * c.k), b = rng.normals(c.batch * c.k * c.n);
        const bias = c.epilogue ? rng.normals(c.n) : null;
        const out = new Float32Array(c.batch * c.m * c.n);
        lib.matmul(a, b, out, {
          ...c,
          aStride: c.m * c.k,
          bStride: c.k * c.n,
          bias,
          act: c.epilogue ? 1 : 0,
        });
        const want = new Float64Array(out.length);
        for (let e = 0; e < c.batch; e++) {
          const ao = e * c.m * c.k, bo = e * c.k * c.n, co = e * c.m * c.n;
          for (let i = 0; i < c.m; i++) {
            for (let j = 0; j < c.n; j++) {
              let s = 0;
              for (let p = 0; p < c.k; p++) {
                const av = c.transA ? a[ao + p * c.m + i] : a[ao + i * c.k + p];
                const bv = c.transB ? b[bo + j * c.k + p] : b[bo + p * c.n + j];
                s += av * bv;
              }
              if (bias) s = Math.max(0, s + bias[j]);
              want[co + i * c.n + j] = s;
            }
          }
        }
        assertClose(out, want, c.k, `matmul ${JSON.stringify(c)} at ${threads} threads`);
      }
    }
  },
});

Deno.test({
  name: "native large shapes: threaded convolution forward and both gradients = float64",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lib = await nativeLib();
    const rng = new Rng(12);
    const cases: [string, ConvGeometry][] = [
      ["indirect, many row blocks", geometry(4, 20, 20, 24, 3, 40, { pad: 1 })],
      ["indirect, one row block", geometry(1, 7, 7, 48, 3, 150, { pad: 1 })],
      ["narrow input (packed patches)", geometry(6, 18, 18, 3, 5, 32, { pad: 2 })],
      ["stride 2", geometry(4, 21, 21, 16, 3, 24, { stride: 2, pad: 1 })],
      ["dilation 2", geometry(3, 16, 16, 16, 3, 20, { dilation: 2, pad: 2 })],
      ["few output channels", geometry(5, 20, 20, 32, 3, 3, { pad: 1 })],
    ];
    for (const threads of THREADS) {
      for (const [what, g] of cases) {
        const x = rng.normals(g.n * g.h * g.w * g.ci);
        const f = rng.normals(g.kh * g.kw * g.ci * g.co);
        const dy = rng.normals(g.n * g.oh * g.ow * g.co);
        const taps = g.kh * g.kw;
        const y = new Float32Array(dy.length);
        lib.conv2d(x, f, y, g);
        assertClose(y, naiveConv(x, f, g), taps * g.ci, `conv forward, ${what}, ${threads}T`);
        const dx = new Float32Array(x.length);
        lib.conv2dBackpropInput(dy, f, dx, g);
        assertClose(dx, naiveInputGrad(dy, f, g), taps * g.co, `input grad, ${what}, ${threads}T`);
        const dw = new Float32Array(f.length);
        lib.conv2dBackpropFilter(x, dy, dw, g);
        assertClose(
          dw,
          naiveFilterGrad(x, dy, g),
          g.n * g.oh * g.ow,
          `filter grad, ${what}, ${threads}T`,
        );
      }
    }
  },
});

Deno.test({
  name: "native large shapes: threaded per-example conv and dense gradients = float64, per row",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lib = await nativeLib();
    const rng = new Rng(13);
    const D = 3;
    for (const threads of THREADS) {
      for (const g of [geometry(6, 11, 11, 16, 5, 16, { pad: 2 }), geometry(5, 12, 12, 3, 5, 8)]) {
        const K = g.kh * g.kw * g.ci * g.co, pix = g.oh * g.ow;
        const P = K + g.co + 7; // a padded row: kernel block, bias block, 7 untouched columns
        const x = rng.normals(g.n * g.h * g.w * g.ci);
        const delta = rng.normals(g.n * D * pix * g.co);
        const out = new Float32Array(g.n * D * P).fill(42);
        lib.perExampleConv(x, delta, out, g, { D, P, kernelOffset: 0, biasOffset: K });
        for (let i = 0; i < g.n; i++) {
          for (let d = 0; d < D; d++) {
            const r = i * D + d;
            // example i alone, with direction d's delta in its place
            const one = { ...g, n: 1 };
            const xi = x.subarray(i * g.h * g.w * g.ci, (i + 1) * g.h * g.w * g.ci);
            const di = delta.subarray(r * pix * g.co, (r + 1) * pix * g.co);
            const row = out.subarray(r * P, (r + 1) * P);
            assertClose(row.subarray(0, K), naiveFilterGrad(xi, di, one), pix, `pe conv row ${r}`);
            const bias = new Float64Array(g.co);
            for (let p = 0; p < pix; p++) {
              for (let o = 0; o < g.co; o++) bias[o] += di[p * g.co + o];
            }
            assertClose(row.subarray(K, K + g.co), bias, pix, `pe conv bias row ${r}`);
            assert.ok(
              row.subarray(K + g.co).every((v) => v === 42),
              "columns past the blocks kept",
            );
          }
        }
      }
      const n = 70, inp = 300, outc = 40;
      const P = inp * outc + outc;
      const a = rng.normals(n * inp), delta = rng.normals(n * D * outc);
      const out = new Float32Array(n * D * P);
      lib.perExampleDense(a, delta, out, {
        n,
        in: inp,
        out: outc,
        D,
        P,
        kernelOffset: 0,
        biasOffset: inp * outc,
      });
      for (let r = 0; r < n * D; r += 17) {
        const i = Math.floor(r / D);
        const want = new Float64Array(P);
        for (let j = 0; j < inp; j++) {
          for (let o = 0; o < outc; o++) want[j * outc + o] = a[i * inp + j] * delta[r * outc + o];
        }
        for (let o = 0; o < outc; o++) want[inp * outc + o] = delta[r * outc + o];
        assertClose(out.subarray(r * P, (r + 1) * P), want, 1, `pe dense row ${r}, ${threads}T`);
      }
    }
  },
});

Deno.test({
  name: "native: a failed allocation inside the kernels is one NativeMemoryError naming its size",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lib = await nativeLib();
    assert.equal(lib.scratchProbe(1024), true);
    assert.throws(
      () => lib.scratchProbe(2 ** 70),
      (e: unknown) =>
        e instanceof NativeMemoryError &&
        /^native kernels: could not allocate \d+(\.\d)? MiB for scratch buffers/.test(e.message),
    );
    // the error was taken: the next call is clean, and products still work
    assert.equal(lib.scratchProbe(1024), true);
    const c = new Float32Array(1);
    lib.matmul(new Float32Array([1, 2]), new Float32Array([3, 4]), c, {
      batch: 1,
      m: 1,
      n: 1,
      k: 2,
      transA: false,
      transB: false,
      aStride: 0,
      bStride: 0,
    });
    assert.equal(c[0], 11);
  },
});
