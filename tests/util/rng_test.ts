import assert from "node:assert";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("Rng: same seed, same stream; other seed, other stream", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 20 }, () => a.nextUint32());
  assert.deepStrictEqual(sa, Array.from({ length: 20 }, () => b.nextUint32()));
  assert.notDeepStrictEqual(sa, Array.from({ length: 20 }, () => c.nextUint32()));
});

Deno.test("Rng: a saved state continues the exact stream (normals included)", () => {
  const a = new Rng(7);
  a.normal(); // leaves a spare deviate pending
  const s = a.getState();
  const next = [a.normal(), a.float(), a.int(10)];
  const b = new Rng(0);
  b.setState(s);
  assert.deepStrictEqual([b.normal(), b.float(), b.int(10)], next);
});

Deno.test("Rng: uniform ints have the right mean; normals have mean 0, sd 1 (seeded, 5σ bounds)", () => {
  const r = new Rng(1);
  const n = 20000;
  let s = 0;
  for (let i = 0; i < n; i++) s += r.int(10);
  assert.ok(Math.abs(s / n - 4.5) < 5 * Math.sqrt(8.25 / n));
  const z = r.normals(n);
  const m = z.reduce((a, b) => a + b, 0) / n;
  const v = z.reduce((a, b) => a + (b - m) ** 2, 0) / n;
  assert.ok(Math.abs(m) < 5 / Math.sqrt(n), `mean ${m}`);
  assert.ok(Math.abs(v - 1) < 5 * Math.sqrt(2 / n), `variance ${v}`);
});

Deno.test("Rng: permutation holds every index once", () => {
  const p = Array.from(new Rng(3).permutation(100)).sort((a, b) => a - b);
  assert.deepStrictEqual(p, Array.from({ length: 100 }, (_, i) => i));
});
