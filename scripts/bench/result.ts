/**
 * The JSON line every benchmark prints (format of `shared/bench/README.md`).
 *
 * @module
 */

/** One benchmark result: one line per (workload, model, backend, variant). */
export interface BenchLine {
  workload: string;
  model: string;
  backend: string;
  threads: number;
  batch: number;
  items_per_s?: number;
  variant: string;
  date_utc: string;
  [extra: string]: unknown;
}

/** Now, as `2026-11-23T10:00:00Z`. */
export function dateUtc(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/** Timing and run-length settings of a benchmark run. */
export interface BenchContext {
  backend: string;
  threads: number;
  quick: boolean;
}

/** Window settings: the README's, or brief ones for `--quick`. */
export function windows(
  ctx: BenchContext,
  full: { minS: number; repeats: number },
): { minS: number; repeats: number } {
  return ctx.quick ? { minS: Math.min(0.1, full.minS), repeats: 1 } : full;
}
