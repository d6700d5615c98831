/** The progress bar's rate: recent progress, not an average since the start. */
import assert from "node:assert";
import { Progress } from "../../lib/util/progress.ts";

Deno.test("Progress.rate() is the last ~30 s's rate: a stall long past does not drag it down", () => {
  let t = 0;
  const bar = new Progress("test", 1000, { quiet: true, now: () => t });
  // 10 items a second for 20 s
  for (let s = 0; s < 20; s++) {
    t += 1000;
    bar.tick(10);
  }
  assert.ok(Math.abs(bar.rate() - 10) < 1e-9, `${bar.rate()}`);
  // a 5-minute stall, then 2 items a second for 60 s
  t += 300_000;
  bar.tick(0);
  for (let s = 0; s < 60; s++) {
    t += 1000;
    bar.tick(2);
  }
  // since the start it would be 320 / 380 s ≈ 0.84 a second
  const r = bar.rate();
  assert.ok(Math.abs(r - 2) < 0.1, `recent rate ${r}, want ~2`);
});

Deno.test("Progress.rate() before 30 s is the rate since the start", () => {
  let t = 0;
  const bar = new Progress("test", 100, { quiet: true, now: () => t });
  t += 500;
  bar.tick(3);
  t += 4500;
  bar.tick(7);
  assert.ok(Math.abs(bar.rate() - 2) < 1e-9, `${bar.rate()}`);
});
