/**
 * The system BLAS loader: where a BLAS is installed (CI installs OpenBLAS), its `cblas_sgemm`
 * through Deno FFI equals a float64 naive product for every transpose combination; where none is,
 * the loader says which paths it tried.
 */

import assert from "node:assert";
import { openSystemBlas } from "../../lib/backend/native/blas.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("system BLAS: cblas_sgemm through FFI = float64 naive product, all transposes", () => {
  const found = openSystemBlas();
  if (!found.blas) {
    assert.match(found.reason, /^no system BLAS found; tried /);
    console.log(`(${found.reason})`);
    return;
  }
  const blas = found.blas;
  try {
    blas.setThreads(2);
    const m = 37, n = 23, k = 19, rng = new Rng(5);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = rng.normals(m * k), b = rng.normals(k * n), c = new Float32Array(m * n);
        blas.sgemm(a, b, c, m, n, k, transA, transB);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) {
              s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
            }
            assert.ok(Math.abs(c[i * n + j] - s) < 1e-5 * Math.sqrt(k), `${blas.name} (${i},${j})`);
          }
        }
      }
    }
  } finally {
    blas.close();
  }
});

Deno.test("system BLAS: a path that does not load is named in the reason", () => {
  const prev = Deno.env.get("GRADLAB_BLAS");
  Deno.env.set("GRADLAB_BLAS", "/nonexistent/libopenblas.so.0");
  try {
    const found = openSystemBlas();
    assert.equal(found.blas, null);
    assert.match(found.reason!, /\/nonexistent\/libopenblas\.so\.0/);
  } finally {
    if (prev === undefined) Deno.env.delete("GRADLAB_BLAS");
    else Deno.env.set("GRADLAB_BLAS", prev);
  }
});
