/**
 * `W5`: a linear SVM fitted on 10,000 × 512 features of 10 Gaussian clusters (one-vs-rest, C = 1,
 * squared hinge, regularised bias — scikit-learn's `LinearSVC` defaults), timed around the fit.
 *
 * The peer's data come from numpy's generator; when the peer runs, its own dump of them
 * (`w5_svm.py --dump-dir`) is read so that both sides fit identical data. Otherwise the same
 * recipe is drawn here: centres N(0, I), balanced shuffled labels, noise σ = 2.
 *
 * @module
 */

import { join } from "node:path";
import { fitOneVsRest, predictMulticlass } from "../../lib/svm/multiclass.ts";
import { Rng } from "../../lib/util/rng.ts";
import { type BenchContext, type BenchLine, dateUtc } from "./result.ts";
import { median } from "./timing.ts";

/** The W5 problem: training and held-out rows. */
export interface SvmData {
  x: Float32Array;
  y: Int32Array;
  xTest: Float32Array;
  yTest: Int32Array;
  n: number;
  d: number;
  classes: number;
  /** "peer dump" or "drawn here" */
  source: string;
}

/** Draws the W5 recipe with this project's generator (n training + n test rows). */
export function drawSvmData(
  o: { n: number; d: number; classes: number; sigma: number; seed: number },
): SvmData {
  const rng = new Rng(o.seed);
  const centers = rng.normals(o.classes * o.d);
  const all = 2 * o.n;
  const labels = rng.permutation(all).map((i) => i % o.classes);
  const x = rng.normals(all * o.d, o.sigma);
  for (let i = 0; i < all; i++) {
    const c = labels[i] * o.d, r = i * o.d;
    for (let k = 0; k < o.d; k++) x[r + k] += centers[c + k];
  }
  return {
    x: x.subarray(0, o.n * o.d),
    y: Int32Array.from(labels.slice(0, o.n)),
    xTest: x.subarray(o.n * o.d),
    yTest: Int32Array.from(labels.slice(o.n)),
    n: o.n,
    d: o.d,
    classes: o.classes,
    source: "drawn here",
  };
}

/** Reads the peer's raw dump (little-endian float32 rows, uint8 labels). */
export async function readSvmDump(dir: string, d: number, classes: number): Promise<SvmData> {
  const f32 = async (name: string) => {
    const b = await Deno.readFile(join(dir, name));
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  };
  const labels = async (name: string) => Int32Array.from(await Deno.readFile(join(dir, name)));
  const x = await f32("X_train.f32"), y = await labels("y_train.u8");
  const xTest = await f32("X_test.f32"), yTest = await labels("y_test.u8");
  if (x.length !== y.length * d || xTest.length !== yTest.length * d) {
    throw new Error(`W5 dump in ${dir} does not hold ${d}-dimensional rows`);
  }
  return { x, y, xTest, yTest, n: y.length, d, classes, source: "peer dump" };
}

function accuracy(
  m: ReturnType<typeof fitOneVsRest>,
  x: Float32Array,
  y: Int32Array,
  d: number,
): number {
  const p = predictMulticlass(m, x, y.length, d);
  let c = 0;
  for (let i = 0; i < y.length; i++) c += p[i] === y[i] ? 1 : 0;
  return c / y.length;
}

/** Fits `repeats` times; the line gives the median fit time and the accuracies. */
export function benchSvm(ctx: BenchContext, data: SvmData, repeats = 3, tol = 1e-4): BenchLine {
  const times: number[] = [];
  let model: ReturnType<typeof fitOneVsRest> | null = null;
  for (let r = 0; r < (ctx.quick ? 1 : repeats); r++) {
    const t0 = performance.now();
    model = fitOneVsRest(data.x, data.y, data.n, data.d, data.classes, {
      C: 1,
      loss: "squared_hinge",
      bias: "regularized",
      tol,
    });
    times.push((performance.now() - t0) / 1000);
  }
  return {
    workload: "W5",
    model: `svm_${data.n / 1000}k_${data.d}`,
    backend: "typescript",
    threads: 1,
    batch: data.n,
    variant: "ovr_dcd",
    date_utc: dateUtc(),
    fit_s: median(times),
    fit_s_all: times,
    accuracy: accuracy(model!, data.x, data.y, data.d),
    test_accuracy: accuracy(model!, data.xTest, data.yTest, data.d),
    iterations: model!.iterations,
    converged: model!.converged,
    duality_gap: model!.gap,
    tol,
    data: data.source,
  };
}

/** The line of the peer's LinearSVC fit. */
export function peerSvmLine(obj: Record<string, unknown>): BenchLine {
  const f = (obj.fits as Record<string, Record<string, unknown>>).LinearSVC;
  return {
    workload: "W5",
    model: `svm_${Number(obj.n_train) / 1000}k_${obj.d}`,
    backend: "sklearn",
    threads: 1,
    batch: Number(obj.n_train),
    variant: "LinearSVC",
    date_utc: String(obj.date_utc),
    fit_s: Number(f.fit_s_median),
    fit_s_all: f.fit_s_all,
    accuracy: Number(f.train_acc),
    test_accuracy: Number(f.test_acc),
    iterations: Number(f.n_iter),
    converged: Boolean(f.converged),
  };
}
