/**
 * The fused GUNN block (lib/layers/gunn_block.ts on the native backend: one kernel each way)
 * against the block written the peer's way with stock TF.js ops (tf.moments, tf.batchNorm, slices
 * and concat): same output and same gradients of x and of every kernel, γ and β, on the direct
 * convolution path (8 channels), the Winograd path (≥ 16 channels a side) and one segment.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend, loadedNativeLib } from "../../lib/backend/select.ts";
import { replaceBlock, type ReplaceBlockParams } from "../../lib/layers/gunn_block.ts";
import { allowFusedGunnUnits } from "../../lib/layers/gunn_fused.ts";
import { Rng } from "../../lib/util/rng.ts";
import { peerBlock } from "./peer_block.ts";

await initBackend("native", { log: null });

function params(C: number, K: number, rng: Rng): ReplaceBlockParams {
  const S = C / K, lim = Math.sqrt(6 / (9 * C + 9 * K));
  return {
    kernels: Array.from(
      { length: S },
      () =>
        tf.tensor4d(Array.from({ length: 9 * C * K }, () => rng.uniform(-lim, lim)), [3, 3, C, K]),
    ),
    // γ and β away from 1 and 0, so that no term of their gradients hides
    gammas: Array.from({ length: S }, () => tf.tensor1d(rng.normals(K).map((v) => 1 + 0.3 * v))),
    betas: Array.from({ length: S }, () => tf.tensor1d(rng.normals(K).map((v) => 0.2 * v))),
  };
}

/** Output and gradients of mean(y · r) for a fixed random r, x then every parameter. */
function outputAndGrads(
  block: (x: tf.Tensor4D, p: ReplaceBlockParams) => tf.Tensor4D,
  x: tf.Tensor4D,
  p: ReplaceBlockParams,
  r: tf.Tensor,
): Float32Array[] {
  const S = p.kernels.length;
  const all = [x, ...p.kernels, ...p.gammas, ...p.betas];
  const unpack = (w: tf.Tensor[]): ReplaceBlockParams => ({
    kernels: w.slice(0, S) as tf.Tensor4D[],
    gammas: w.slice(S, 2 * S) as tf.Tensor1D[],
    betas: w.slice(2 * S) as tf.Tensor1D[],
  });
  return tf.tidy(() => {
    const y = block(x, p);
    const grads = tf.grads((xi: tf.Tensor, ...w: tf.Tensor[]) =>
      tf.mean(tf.mul(block(xi as tf.Tensor4D, unpack(w)), r))
    )(all);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

const CASES: [string, number[], number][] = [
  ["direct convolutions, 4 segments of 2", [3, 5, 5, 8], 2],
  ["Winograd convolutions, 2 segments of 16", [2, 6, 7, 32], 16],
  ["one segment (the SUNN reference's form)", [2, 4, 4, 6], 6],
];

for (const [name, shape, K] of CASES) {
  Deno.test(`fused GUNN block equals the stock-op block: ${name}`, () => {
    const rng = new Rng(11);
    const [n, h, w, C] = shape;
    const x = tf.tensor4d(rng.normals(n * h * w * C), shape as [number, number, number, number]);
    const r = tf.tensor4d(rng.normals(n * h * w * C), shape as [number, number, number, number]);
    const p = params(C, K, rng);
    const lib = loadedNativeLib()!;
    const before = [lib.calls.gunnBlockForward ?? 0, lib.calls.gunnBlockBackward ?? 0];
    const tensorsBefore = tf.memory().numTensors;
    const fused = outputAndGrads((xi, q) => replaceBlock(xi, q, 1e-3), x, p, r);
    assert.equal(tf.memory().numTensors, tensorsBefore, "the fused block leaks no tensor");
    assert.ok((lib.calls.gunnBlockForward ?? 0) >= before[0] + 2, "fused forward ran");
    assert.equal(lib.calls.gunnBlockBackward, before[1] + 1, "fused backward ran");
    const ref = outputAndGrads(peerBlock, x, p, r);
    const names = ["y", "dx", ...["dk", "dγ", "dβ"].flatMap((g) => p.kernels.map((_, j) => g + j))];
    fused.forEach((a, t) => {
      const b = ref[t];
      const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(scale > 0, `${names[t]} is not all zero`);
      a.forEach((v, i) =>
        assert.ok(
          Math.abs(v - b[i]) <= 2e-5 * scale + 1e-4 * Math.abs(b[i]),
          `${names[t]}[${i}]: fused ${v} vs stock ${b[i]} (max |·| ${scale})`,
        )
      );
    });
    tf.dispose([x, r, ...p.kernels, ...p.gammas, ...p.betas]);
  });
}

Deno.test("allowFusedGunnUnits(false) runs the block with stock ops", () => {
  const lib = loadedNativeLib()!;
  const rng = new Rng(3);
  const x = tf.tensor4d(rng.normals(2 * 3 * 3 * 4), [2, 3, 3, 4]);
  const p = params(4, 2, rng);
  const before = lib.calls.gunnBlockForward ?? 0;
  const was = allowFusedGunnUnits(false);
  try {
    tf.dispose(replaceBlock(x, p, 1e-3));
  } finally {
    allowFusedGunnUnits(was);
  }
  assert.equal(lib.calls.gunnBlockForward ?? 0, before);
  tf.dispose([x, ...p.kernels, ...p.gammas, ...p.betas]);
});
