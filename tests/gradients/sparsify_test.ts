import assert from "node:assert";
import { percentile, sparsifyRows } from "../../lib/gradients/sparsify.ts";
import type { GradientLayout } from "../../lib/gradients/per_example.ts";
import { Rng } from "../../lib/util/rng.ts";

/** numpy.percentile(a, p) (linear interpolation), by sorting. */
function npPercentile(a: number[], p: number): number {
  const s = [...a].sort((x, y) => x - y);
  const pos = (p / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  return lo + 1 < s.length ? s[lo] + (pos - lo) * (s[lo + 1] - s[lo]) : s[lo];
}

Deno.test("percentile() matches numpy's linear rule on hand-made cases", () => {
  assert.strictEqual(percentile(Float32Array.from([1, 2, 3, 4]), 50), 2.5);
  assert.strictEqual(
    percentile(Float32Array.from([0, 0, 0, 1, 1, 1, 2, 2, 5, 9]), 85),
    Math.fround(3.95),
  );
  assert.strictEqual(percentile(Float32Array.from([3, 3, 3, 3]), 85), 3);
  assert.strictEqual(percentile(Float32Array.from([7]), 85), 7);
  assert.strictEqual(percentile(Float32Array.from([4, 1]), 0), 1);
  assert.strictEqual(percentile(Float32Array.from([4, 1]), 100), 4);
});

Deno.test("percentile() equals the sorting reference on random data with many ties", () => {
  const rng = new Rng(1);
  for (let t = 0; t < 200; t++) {
    const n = 1 + rng.int(60);
    const a = Array.from({ length: n }, () => rng.int(6));
    const p = rng.int(101);
    // Thresholds are rounded to float32, the precision of the data.
    assert.ok(
      percentile(Float32Array.from(a), p) === Math.fround(npPercentile(a, p)),
      `${a} p=${p}`,
    );
  }
});

const layout: GradientLayout = {
  size: 14,
  blocks: [
    { op: 0, layer: "a", kind: "dense", part: "kernel", shape: [10], offset: 0, size: 10 },
    { op: 1, layer: "b", kind: "dense", part: "kernel", shape: [4], offset: 10, size: 4 },
  ],
};

Deno.test("sparsifyRows() keeps, per layer, exactly the entries above the (100−q)th percentile of |g|", () => {
  // layer a: |g| = 0,0,0,1,1,1,2,2,5,9 (shuffled, signs mixed) → 85th percentile 3.95 → keep ±5, 9
  // layer b: all ties → threshold 3 → nothing strictly greater → all zero
  const row = Float32Array.from([1, -2, 0, 9, 1, 0, -5, 2, -1, 0, 3, -3, 3, 3]);
  const kept = sparsifyRows(row, layout, 15);
  assert.strictEqual(kept, 2);
  assert.deepStrictEqual(Array.from(row), [0, 0, 0, 9, 0, 0, -5, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("sparsifyRows() agrees with the numpy rule on random rows with ties", () => {
  const rng = new Rng(2);
  for (let t = 0; t < 50; t++) {
    const q = 1 + rng.int(100);
    const rows = Float32Array.from({ length: 3 * 14 }, () => rng.int(5) - 2);
    const want = Array.from(rows);
    for (let r = 0; r < 3; r++) {
      for (const b of layout.blocks) {
        const vals = want.slice(r * 14 + b.offset, r * 14 + b.offset + b.size);
        const thr = npPercentile(vals.map(Math.abs), 100 - q);
        vals.forEach((v, i) => {
          if (!(Math.abs(v) > thr)) want[r * 14 + b.offset + i] = 0;
        });
      }
    }
    sparsifyRows(rows, layout, q);
    assert.deepStrictEqual(Array.from(rows), want.map((v) => v + 0)); // +0: −0 → 0
  }
});

Deno.test("the native sparsification keeps exactly what the TypeScript one keeps", async () => {
  const { initBackend, loadedNativeLib } = await import("../../lib/backend/select.ts");
  await initBackend("native", { log: null });
  assert.ok(loadedNativeLib());
  const rng = new Rng(5);
  const big: GradientLayout = {
    size: 700,
    blocks: [
      { op: 0, layer: "a", kind: "conv", part: "kernel", shape: [300], offset: 0, size: 300 },
      { op: 1, layer: "b", kind: "dense", part: "kernel", shape: [400], offset: 300, size: 400 },
    ],
  };
  // the native selection works on the bits of |g|: values across many binades (and zeros) take
  // every radix pass
  const draws = {
    normal: () => rng.normal(),
    ties: () => rng.int(7) - 3,
    wide: () => (rng.int(10) < 3 ? 0 : rng.normal() * 10 ** (rng.int(12) - 9)),
  };
  for (const draw of Object.values(draws)) {
    const rows = Float32Array.from({ length: 20 * 700 }, draw);
    const a = rows.slice(), b = rows.slice();
    const ka = sparsifyRows(a, big, 15, { native: false });
    const kb = sparsifyRows(b, big, 15);
    assert.strictEqual(kb, ka);
    assert.deepStrictEqual(b, a);
    assert.ok((loadedNativeLib()!.calls.sparsify ?? 0) > 0);
  }
});
