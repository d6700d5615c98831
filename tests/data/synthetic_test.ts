import assert from "node:assert";
import { band, gaussianBlobs, moons, quarterAnnuli } from "../../lib/data/synthetic.ts";

Deno.test("gaussianBlobs() has the requested counts, and sample means near the centres", () => {
  const b = gaussianBlobs({ centers: [[0, 0], [10, -5]], sigma: 1, counts: [3000, 1000], seed: 1 });
  assert.strictEqual(b.n, 4000);
  for (const [k, c] of [[0, [0, 0]], [1, [10, -5]]] as const) {
    const idx = Array.from(b.y).map((y, i) => (y === k ? i : -1)).filter((i) => i >= 0);
    assert.strictEqual(idx.length, k === 0 ? 3000 : 1000);
    for (let d = 0; d < 2; d++) {
      const m = idx.reduce((s, i) => s + b.x[i * 2 + d], 0) / idx.length;
      assert.ok(Math.abs(m - c[d]) < 5 / Math.sqrt(idx.length), `mean ${m} vs ${c[d]}`);
    }
  }
  assert.deepStrictEqual(
    gaussianBlobs({ centers: [[0]], sigma: 1, counts: 5, seed: 2 }).x,
    gaussianBlobs({ centers: [[0]], sigma: 1, counts: 5, seed: 2 }).x,
  );
});

Deno.test("band() leaves the band empty and labels each side", () => {
  const b = band({ n: 2000, seed: 2 });
  for (let i = 0; i < b.n; i++) {
    const s = b.x[2 * i] + b.x[2 * i + 1] - 1;
    assert.ok(Math.abs(s) >= 0.1);
    assert.strictEqual(b.y[i], s > 0 ? 1 : 0);
  }
});

Deno.test("quarterAnnuli() puts each class in its radius range", () => {
  const q = quarterAnnuli({ seed: 3 });
  for (let i = 0; i < q.n; i++) {
    const r = Math.hypot(q.x[2 * i], q.x[2 * i + 1]);
    if (q.y[i] === 0) assert.ok(r >= 0.1 && r <= 200);
    else assert.ok(r >= 300 && r <= 400);
  }
  assert.ok(q.n > 1000);
});

Deno.test("moons() without noise lies on the two half circles", () => {
  const m = moons({ n: 100, noise: 0, seed: 4 });
  for (let i = 0; i < m.n; i++) {
    const [x, y] = [m.x[2 * i], m.x[2 * i + 1]];
    const r = m.y[i] === 0 ? Math.hypot(x, y) : Math.hypot(x - 1, y - 0.5);
    assert.ok(Math.abs(r - 1) < 1e-6);
  }
});
