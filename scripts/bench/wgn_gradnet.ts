/**
 * `Wgn`: GradNet's training step on sparse feature rows (lib/gradnet/sparse.ts) — plain SGD on a
 * batch of 25 rows, the paper's recipe — in the two layouts the script trains: the default (MNIST
 * `cnn_cifar(16)`, 5+25+10 on 14,640 inputs) and the paper's (MNIST `cnn_cifar(64)`, 5+100+25 on
 * 135,360 inputs, 13.5 M weights). Rows keep 15 % of each block at random places, as the
 * sparsification does. Variants: `native` (the C kernel, on the native backend) and `typescript`
 * (the same algorithm in TypeScript, run once at one thread). Items are rows; `steps_per_s` is the
 * step rate.
 *
 * @module
 */

import { SparseGradNet } from "../../lib/gradnet/sparse.ts";
import type { SparseRow } from "../../lib/gradnet/cache.ts";
import { loadedNativeLib } from "../../lib/backend/select.ts";
import { Rng } from "../../lib/util/rng.ts";
import { type BenchContext, type BenchLine, dateUtc, windows } from "./result.ts";
import { timeWindows } from "./timing.ts";

/** The GradNet layouts of the script's default and paper presets on MNIST. */
export const GRADNET_LAYOUTS: Record<string, { blocks: number[]; hidden: number[] }> = {
  "gradnet_h16_5+25+10": { blocks: [400, 6400, 7840], hidden: [5, 25, 10] },
  "gradnet_h64_5+100+25": { blocks: [1600, 102400, 31360], hidden: [5, 100, 25] },
};

function randomRows(blocks: number[], count: number, rng: Rng): SparseRow[] {
  const P = blocks.reduce((a, b) => a + b, 0);
  return Array.from({ length: count }, () => {
    const at: number[] = [];
    for (let j = 0; j < P; j++) if (rng.uniform(0, 1) < 0.15) at.push(j);
    const index = P > 65536 ? Uint32Array.from(at) : Uint16Array.from(at);
    return { index, value: Float32Array.from(at, () => rng.uniform(0, 1)) };
  });
}

/** One line per layout and implementation. */
export async function benchGradNetStep(ctx: BenchContext): Promise<BenchLine[]> {
  const B = 25, classes = 10, pool = 200;
  const lines: BenchLine[] = [];
  // a host computation: the C kernel on the native backend; the TypeScript loops once (at one
  // thread, in the native run, or on another backend when the native library is not loaded)
  const native = ctx.backend === "native" && loadedNativeLib() !== null;
  const impls = native ? ["native", "typescript"] : loadedNativeLib() ? [] : ["typescript"];
  for (const [model, { blocks, hidden }] of Object.entries(GRADNET_LAYOUTS)) {
    const rng = new Rng(7);
    const rows = randomRows(blocks, pool, rng);
    const targets = Int32Array.from({ length: pool }, () => rng.int(classes));
    const H = hidden.reduce((a, b) => a + b, 0);
    for (const impl of impls) {
      if (impl === "typescript" && ctx.threads > 1) continue; // one thread whatever the setting
      const values: Float32Array[] = [];
      blocks.forEach((d, i) => {
        values.push(rng.normals(d * hidden[i], 0.02), new Float32Array(hidden[i]));
      });
      values.push(rng.normals(H * classes, 0.02), new Float32Array(classes));
      const net = new SparseGradNet(blocks, hidden, classes, values, {
        native: impl === "native",
      });
      let at = 0;
      const step = () => {
        const from = at;
        at = (at + B) % (pool - B);
        net.step(rows.slice(from, from + B), targets.subarray(from, from + B), 0.01);
      };
      const timing = await timeWindows(step, B, {
        ...windows(ctx, { minS: 2, repeats: 3 }),
        sync: "call",
      });
      lines.push({
        workload: "Wgn",
        model,
        backend: impl === "native" ? ctx.backend : "typescript",
        threads: impl === "native" ? ctx.threads : 1,
        batch: B,
        variant: impl,
        date_utc: dateUtc(),
        ...timing,
        steps_per_s: 1 / timing.sec_per_call_median,
        ms_per_step: timing.sec_per_call_median * 1000,
        inputs: blocks.reduce((a, b) => a + b, 0),
        weights: net.theta.length,
        entries_per_row: Math.round(rows.reduce((a, r) => a + r.index.length, 0) / pool),
      });
    }
  }
  return lines;
}
