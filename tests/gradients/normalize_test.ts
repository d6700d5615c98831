import assert from "node:assert";
import { NORMALIZATIONS, normalizeRows, RunningStats } from "../../lib/gradients/normalize.ts";
import { sparsifyRows } from "../../lib/gradients/sparsify.ts";
import type { GradientLayout } from "../../lib/gradients/per_example.ts";
import { Rng } from "../../lib/util/rng.ts";

const P = 12;
const layout: GradientLayout = {
  size: P,
  blocks: [
    { op: 0, layer: "a", kind: "dense", part: "kernel", shape: [5], offset: 0, size: 5 },
    { op: 1, layer: "b", kind: "dense", part: "kernel", shape: [7], offset: 5, size: 7 },
  ],
};

function rows(seed: number, count: number): Float32Array {
  return new Rng(seed).normals(count * P, 2);
}

Deno.test("RunningStats in several batches equals a two-pass computation", () => {
  const all = rows(1, 40);
  const s = new RunningStats(P);
  s.update(all.subarray(0, 13 * P));
  s.update(all.subarray(13 * P));
  const r = s.result();
  for (let i = 0; i < P; i++) {
    const col = Array.from({ length: 40 }, (_, k) => all[k * P + i]);
    const mean = col.reduce((a, b) => a + b) / 40;
    const sd = Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / 40);
    assert.strictEqual(r.min[i], Math.min(...col));
    assert.strictEqual(r.max[i], Math.max(...col));
    assert.ok(Math.abs(r.mean[i] - mean) < 1e-5 && Math.abs(r.std[i] - sd) < 1e-4);
  }
});

Deno.test("every normalisation keeps sparsified (zero) entries exactly zero", () => {
  const train = rows(2, 30);
  sparsifyRows(train, layout, 40);
  const stats = (() => {
    const s = new RunningStats(P);
    s.update(train);
    return s.result();
  })();
  for (const kind of NORMALIZATIONS) {
    const r = train.slice();
    normalizeRows(r, { kind, stats, layout });
    train.forEach((v, i) => {
      if (v === 0) assert.ok(Object.is(r[i], 0), `${kind}: ${r[i]} at masked ${i}`);
    });
    assert.ok(r.every(Number.isFinite), kind);
  }
});

Deno.test("scale maps training rows into [0, 1]; scale_power is its signed square root", () => {
  const train = rows(3, 25);
  const s = new RunningStats(P);
  s.update(train);
  const stats = s.result();
  const a = train.slice(), b = train.slice();
  normalizeRows(a, { kind: "scale", stats });
  normalizeRows(b, { kind: "scale_power", stats });
  a.forEach((v, i) => {
    assert.ok(v >= 0 && v <= 1 + 1e-6);
    assert.ok(Math.abs(b[i] - Math.sqrt(v)) < 1e-6);
  });
});

Deno.test("std standardises each coordinate; std_l2 then gives each layer block unit norm", () => {
  const train = rows(4, 50);
  const s = new RunningStats(P);
  s.update(train);
  const stats = s.result();
  const z = train.slice();
  normalizeRows(z, { kind: "std", stats });
  for (let i = 0; i < P; i++) {
    const col = Array.from({ length: 50 }, (_, k) => z[k * P + i]);
    const m = col.reduce((x, y) => x + y) / 50;
    assert.ok(Math.abs(m) < 1e-4);
    assert.ok(Math.abs(Math.sqrt(col.reduce((x, y) => x + y * y, 0) / 50) - 1) < 1e-3);
  }
  const l2 = train.slice();
  normalizeRows(l2, { kind: "std_l2", stats, layout });
  for (let r = 0; r < 50; r++) {
    for (const b of layout.blocks) {
      const n = Math.hypot(...l2.subarray(r * P + b.offset, r * P + b.offset + b.size));
      assert.ok(Math.abs(n - 1) < 1e-5);
    }
  }
});

Deno.test("power is sign(g)·|g|^e", () => {
  const r = Float32Array.from([-16, 0, 81, 1, -1, 256, 0.0625, 2, 3, 4, 5, 6]);
  normalizeRows(r, { kind: "power", exponent: 0.25, layout });
  assert.deepStrictEqual(Array.from(r.subarray(0, 7)), [-2, 0, 3, 1, -1, 4, 0.5]);
});

Deno.test("the native scale normalisation of sparse entries gives the TypeScript bits (zero ranges, both index widths)", async () => {
  const { normalizeEntries } = await import("../../lib/gradients/normalize.ts");
  const { initBackend, loadedNativeLib } = await import("../../lib/backend/select.ts");
  await initBackend("native", { log: null });
  const rng = new Rng(8);
  for (const size of [300, 70_000]) {
    const min = Float32Array.from({ length: size }, () => -Math.abs(rng.normal()));
    const max = Float32Array.from(
      { length: size },
      (_, i) => (i % 7 === 0 ? min[i] : Math.abs(rng.normal())),
    );
    const stats = { count: 1, min, max, mean: new Float32Array(size), std: new Float32Array(size) };
    const at: number[] = [];
    for (let i = 0; i < size; i++) if (rng.uniform(0, 1) < 0.3) at.push(i);
    const index = size > 65536 ? Uint32Array.from(at) : Uint16Array.from(at);
    // values in range, out of range (negative after scaling), and exact zeros
    const value = Float32Array.from(
      at,
      (i) => (i % 5 === 0 ? 0 : min[i] + rng.uniform(-0.5, 1.2) * (max[i] - min[i] + 1)),
    );
    for (const kind of ["scale", "scale_power"] as const) {
      const a = value.slice(), b = value.slice();
      const before = loadedNativeLib()!.calls.scale_entries ?? 0;
      normalizeEntries(index, a, { kind, stats });
      assert.strictEqual(
        loadedNativeLib()!.calls.scale_entries,
        before + 1,
        "native path not taken",
      );
      normalizeEntries(index, b, { kind, stats, native: false });
      assert.deepStrictEqual(a, b, `${kind}, ${size} coordinates`);
      assert.ok(a.some((v) => v < 0) && a.some((v) => v > 0) && a.some((v) => v === 0));
    }
  }
});
