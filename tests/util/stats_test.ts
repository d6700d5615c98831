/** Summary statistics against published t-table values and hand-computed cases. */
import assert from "node:assert/strict";
import { interval95, tQuantile975 } from "../../lib/util/stats.ts";

Deno.test("tQuantile975 matches the t table: small df from it, large df by the expansion", () => {
  // published 0.975 quantiles
  for (
    const [df, t] of [[1, 12.706], [2, 4.303], [9, 2.262], [30, 2.042], [60, 2.0], [120, 1.98]]
  ) {
    assert.ok(Math.abs(tQuantile975(df) - t) < 1.5e-3, `df ${df}: ${tQuantile975(df)} vs ${t}`);
  }
  assert.throws(() => tQuantile975(0), RangeError);
});

Deno.test("interval95 of paired differences: hand-computed, and no interval from one seed", () => {
  // differences 0.5, 1.5, 1.0, 2.0: mean 1.25, sd √(5/12), t(3) = 3.182
  const d = [0.5, 1.5, 1.0, 2.0];
  const half = 3.182 * Math.sqrt(5 / 12) / 2;
  const ci = interval95(d);
  assert.ok(Math.abs(ci.mean - 1.25) < 1e-12);
  assert.ok(Math.abs(ci.low - (1.25 - half)) < 1e-12 && Math.abs(ci.high - (1.25 + half)) < 1e-12);
  const one = interval95([0.3]);
  assert.ok(Number.isNaN(one.low) && Number.isNaN(one.high));
});
