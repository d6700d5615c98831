/** Augmentation invariants and hand-checked cases. */

import assert from "node:assert";
import {
  centerCrop,
  cyclicShift,
  type HostBatch,
  normalizeChannels,
  perImageStandardize,
  randomContrast,
  randomCrop,
  randomFlip,
} from "../../lib/data/augment.ts";
import { Rng } from "../../lib/util/rng.ts";

function batch(n: number, h: number, w: number, c: number, seed = 0): HostBatch {
  return { data: new Rng(seed).normals(n * h * w * c), n, h, w, c };
}
const at = (b: HostBatch, i: number, y: number, x: number, k: number) =>
  b.data[((i * b.h + y) * b.w + x) * b.c + k];

Deno.test("randomFlip with p = 1 twice is the identity; once it mirrors columns", () => {
  const b = batch(3, 4, 5, 2);
  const once = randomFlip(b, new Rng(1), 1);
  assert.strictEqual(at(once, 2, 3, 0, 1), at(b, 2, 3, 4, 1));
  assert.deepStrictEqual(randomFlip(once, new Rng(2), 1).data, b.data);
  assert.deepStrictEqual(randomFlip(b, new Rng(1), 0).data, b.data);
});

Deno.test("randomCrop from padding keeps the image content, shifted, with zeros outside", () => {
  const b = batch(4, 6, 6, 1);
  const r = randomCrop(b, [6, 6], new Rng(5), 2);
  for (let i = 0; i < 4; i++) {
    // Recover the offset from the crop: find (dy, dx) such that the crop equals the shifted image.
    let found = false;
    for (let dy = 0; dy <= 4 && !found; dy++) {
      for (let dx = 0; dx <= 4 && !found; dx++) {
        let ok = true;
        for (let y = 0; y < 6 && ok; y++) {
          for (let x = 0; x < 6 && ok; x++) {
            const sy = y + dy - 2, sx = x + dx - 2;
            const want = sy < 0 || sy >= 6 || sx < 0 || sx >= 6 ? 0 : at(b, i, sy, sx, 0);
            ok = at(r, i, y, x, 0) === want;
          }
        }
        found = ok;
      }
    }
    assert.ok(found, `image ${i} is not a padded crop`);
  }
});

Deno.test("centerCrop takes the middle (offset floor((h−oh)/2))", () => {
  const b = batch(1, 32, 32, 3);
  const c = centerCrop(b, [24, 24]);
  assert.strictEqual(at(c, 0, 0, 0, 2), at(b, 0, 4, 4, 2));
  assert.strictEqual(at(c, 0, 23, 23, 0), at(b, 0, 27, 27, 0));
});

Deno.test("randomContrast keeps each channel's mean and scales its deviations by one factor", () => {
  const b = batch(2, 5, 5, 3);
  const r = randomContrast(b, new Rng(3), 0.2, 1.8);
  for (let i = 0; i < 2; i++) {
    for (let k = 0; k < 3; k++) {
      const xs: number[] = [], ys: number[] = [];
      for (let y = 0; y < 5; y++) {
        for (let x = 0; x < 5; x++) {
          xs.push(at(b, i, y, x, k));
          ys.push(at(r, i, y, x, k));
        }
      }
      const mx = xs.reduce((a, v) => a + v) / 25, my = ys.reduce((a, v) => a + v) / 25;
      assert.ok(Math.abs(mx - my) < 1e-5);
      const f = (ys[0] - my) / (xs[0] - mx);
      assert.ok(f >= 0.2 - 1e-4 && f < 1.8 + 1e-4, `factor ${f}`);
      xs.forEach((v, j) => assert.ok(Math.abs((ys[j] - my) - f * (v - mx)) < 1e-4));
    }
  }
});

Deno.test("perImageStandardize gives mean 0 and std 1 (and divides by 1/√N for flat images)", () => {
  const b = batch(2, 4, 4, 3);
  const s = perImageStandardize(b);
  for (let i = 0; i < 2; i++) {
    const v = s.data.subarray(i * 48, (i + 1) * 48);
    const m = v.reduce((a, x) => a + x) / 48;
    const sd = Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / 48);
    assert.ok(Math.abs(m) < 1e-5 && Math.abs(sd - 1) < 1e-4);
  }
  const flat = perImageStandardize({ data: new Float32Array(48).fill(3), n: 1, h: 4, w: 4, c: 3 });
  assert.ok(flat.data.every((x) => x === 0));
});

Deno.test("normalizeChannels is (x − mean[c]) / std[c]", () => {
  const b: HostBatch = { data: new Float32Array([10, 20, 30, 40]), n: 1, h: 1, w: 2, c: 2 };
  assert.deepStrictEqual(Array.from(normalizeChannels(b, [10, 20], [2, 4]).data), [0, 0, 10, 5]);
});

Deno.test("cyclicShift only rolls: each image keeps its multiset of values and is a roll of the original", () => {
  const b = batch(6, 4, 5, 1);
  const r = cyclicShift(b, new Rng(9), 1);
  for (let i = 0; i < 6; i++) {
    let isRoll = false;
    for (let d = 0; d < 5 && !isRoll; d++) {
      isRoll = [...Array(20).keys()].every((p) =>
        at(r, i, Math.floor(p / 5), p % 5, 0) ===
          at(b, i, Math.floor(p / 5), (p % 5 - d + 5) % 5, 0)
      );
    }
    for (let d = 0; d < 4 && !isRoll; d++) {
      isRoll = [...Array(20).keys()].every((p) =>
        at(r, i, Math.floor(p / 5), p % 5, 0) ===
          at(b, i, (Math.floor(p / 5) - d + 4) % 4, p % 5, 0)
      );
    }
    assert.ok(isRoll, `image ${i} is not a cyclic roll`);
  }
});

Deno.test("augmentations are deterministic for a seed", () => {
  const b = batch(4, 8, 8, 3);
  const f = (s: number) =>
    cyclicShift(randomFlip(randomCrop(b, [6, 6], new Rng(s), 1), new Rng(s + 1)), new Rng(s + 2))
      .data;
  assert.deepStrictEqual(f(1), f(1));
  assert.notDeepStrictEqual(f(1), f(2));
});

Deno.test("cyclicShift alone (Jigsaw): rolls 2/3 of the images, half along each axis, by every d in 1…W", () => {
  const n = 3000, h = 8, w = 8;
  const data = new Float32Array(n * h * w);
  for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) data[i * h * w + p] = p; // all distinct
  const r = cyclicShift({ data, n, h, w, c: 1 }, new Rng(21));
  let rolled = 0, alongWidth = 0;
  const shifts = new Set<number>();
  for (let i = 0; i < n; i++) {
    const img = r.data.subarray(i * h * w, (i + 1) * h * w);
    // the one roll (axis, d) that reproduces the output: content preserved, cyclically
    let found: [string, number] | null = null;
    for (const axis of ["w", "h"]) {
      for (let d = 0; d < (axis === "w" ? w : h) && !found; d++) {
        let ok = true;
        for (let y = 0; y < h && ok; y++) {
          for (let x = 0; x < w && ok; x++) {
            const sy = axis === "h" ? (y - d + h) % h : y, sx = axis === "w" ? (x - d + w) % w : x;
            ok = img[y * w + x] === sy * w + sx;
          }
        }
        if (ok) found = [axis, d];
      }
    }
    assert.ok(found, `image ${i} is not a cyclic roll of its input`);
    if (found[1] !== 0) {
      rolled++;
      if (found[0] === "w") alongWidth++;
      shifts.add(found[1]);
    }
  }
  // P(rolled) = 2/3 · (1 − 1/W): d = W rolls an image onto itself
  const p = (2 / 3) * (1 - 1 / w), sd = Math.sqrt(p * (1 - p) / n);
  assert.ok(Math.abs(rolled / n - p) < 4 * sd, `rolled ${rolled / n}, expected ${p}`);
  const half = Math.sqrt(0.25 / rolled);
  assert.ok(Math.abs(alongWidth / rolled - 0.5) < 4 * half, `along width ${alongWidth / rolled}`);
  assert.deepStrictEqual([...shifts].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
});
