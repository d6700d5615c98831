/**
 * A system BLAS's `cblas_sgemm`, opened with `Deno.dlopen` (no compile step): OpenBLAS, BLIS or
 * Apple's Accelerate, whichever is found first. The native backend's own packed GEMM is measured
 * against it by `deno task bench --workload=Wgemm` (see the README's "Native kernels and BLAS").
 *
 * @example
 * ```ts
 * import { openSystemBlas } from "./blas.ts";
 * const found = openSystemBlas();
 * if (found.blas) {
 *   const c = new Float32Array(1);
 *   // [1 2] · [3 4]ᵀ = 11
 *   found.blas.sgemm(new Float32Array([1, 2]), new Float32Array([3, 4]), c, 1, 1, 2, false, true);
 *   if (c[0] !== 11) throw new Error(`sgemm gave ${c[0]}`);
 *   found.blas.close();
 * }
 * ```
 *
 * @module
 */

/** A BLAS opened from a shared library. */
export interface SystemBlas {
  /** "openblas", "blis" or "accelerate" */
  name: string;
  /** the shared library's path */
  path: string;
  /** C[M×N] = op(A)·op(B), row-major, lda/ldb/ldc the natural ones (A [M×K] or, transposed, [K×M]) */
  sgemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
  ): void;
  /** sets the library's own thread count (OpenBLAS's pthread pool, BLIS's OpenMP team) */
  setThreads(n: number): void;
  close(): void;
}

/** Where each library is looked for, in order; `GRADLAB_BLAS=path` comes first. */
export const BLAS_CANDIDATES: { name: string; path: string }[] = [
  { name: "openblas", path: "libopenblas.so.0" },
  { name: "openblas", path: "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0" },
  { name: "blis", path: "libblis.so.4" },
  { name: "blis", path: "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4" },
  { name: "openblas", path: "libopenblas.dylib" },
  {
    name: "accelerate",
    path: "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  },
];

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

const SGEMM = {
  parameters: [
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "f32",
    "buffer",
    "i32",
    "buffer",
    "i32",
    "f32",
    "buffer",
    "i32",
  ],
  result: "void",
} as const;

type Buf = Float32Array<ArrayBuffer>;

function openOne(name: string, path: string): SystemBlas {
  const lib = Deno.dlopen(
    path,
    {
      cblas_sgemm: SGEMM,
      openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
      bli_thread_set_num_threads: { parameters: ["i64"], result: "void", optional: true },
    } as const,
  );
  const s = lib.symbols;
  return {
    name,
    path,
    sgemm(a, b, c, m, n, k, transA, transB) {
      s.cblas_sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        a as Buf,
        transA ? m : k,
        b as Buf,
        transB ? k : n,
        0,
        c as Buf,
        n,
      );
    },
    setThreads(t) {
      if (s.openblas_set_num_threads) s.openblas_set_num_threads(t);
      else if (s.bli_thread_set_num_threads) s.bli_thread_set_num_threads(BigInt(t));
    },
    close: () => lib.close(),
  };
}

/**
 * Opens the first BLAS that loads: `GRADLAB_BLAS` (a path) if set, else {@link BLAS_CANDIDATES},
 * or only those named `only`. Returns `{ blas: null, reason }` when none does.
 */
export function openSystemBlas(
  only?: string,
): { blas: SystemBlas; reason?: undefined } | { blas: null; reason: string } {
  const env = Deno.env.get("GRADLAB_BLAS");
  const list = env
    ? [{ name: env.includes("blis") ? "blis" : "openblas", path: env }]
    : BLAS_CANDIDATES.filter((c) => !only || c.name === only);
  const tried: string[] = [];
  for (const c of list) {
    try {
      return { blas: openOne(c.name, c.path) };
    } catch (e) {
      tried.push(`${c.path} (${(e as Error).message.split("\n")[0]})`);
    }
  }
  return { blas: null, reason: `no system BLAS found; tried ${tried.join(", ")}` };
}
