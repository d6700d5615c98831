/**
 * Epoch-end callbacks: a ladder of snapshots taken when a metric first reaches each target
 * (GradNet's base networks of increasing accuracy), and early stopping.
 *
 * @module
 */

import type { Callback, EpochRecord } from "./fit.ts";

/** A rung of a ladder: the target and what was reached. */
export interface Rung {
  /** accuracy the rung asks for */
  target: number;
  /** accuracy reached when it was met */
  reached: number;
  /** epoch it was met in */
  epoch: number;
  /** global step it was met at */
  step: number;
}

/**
 * Calls `onReach(target, record)` once for each target the first time `record[metric]` ≥ target
 * (several in one epoch when the metric jumps). Reached rungs are kept in `state.extra.ladder`, so
 * a resumed run does not take them again. With `stopWhenDone`, training stops after the last rung.
 * With `optional`, records that lack the metric (not evaluated that epoch) are skipped.
 */
export function ladderCallback(o: {
  targets: number[];
  metric: string;
  onReach(target: number, record: EpochRecord): Promise<void>;
  stopWhenDone?: boolean;
  /** records without the metric (epochs that were not evaluated) are skipped, not an error */
  optional?: boolean;
}): Callback {
  const targets = [...o.targets].sort((a, b) => a - b);
  return {
    async onEpochEnd(record, state) {
      const rungs = (state.extra.ladder ??= []) as Rung[];
      const value = record[o.metric];
      if (value === undefined && o.optional) return;
      if (typeof value !== "number") {
        throw new Error(`ladder: the epoch record has no '${o.metric}'`);
      }
      for (const t of targets) {
        if (rungs.some((r) => r.target === t) || value < t) continue;
        await o.onReach(t, record);
        rungs.push({ target: t, reached: value, epoch: record.epoch, step: record.step });
      }
      if (o.stopWhenDone && rungs.length === targets.length) return "stop";
    },
  };
}

/** Stops when `metric` has not improved by `minDelta` for `patience` epochs. */
export function earlyStopping(
  o: { metric: string; patience: number; mode?: "max" | "min"; minDelta?: number },
): Callback {
  const sign = (o.mode ?? "max") === "max" ? 1 : -1;
  return {
    onEpochEnd(record, state) {
      const s = (state.extra.earlyStop ??= { best: -Infinity, since: 0 }) as {
        best: number;
        since: number;
      };
      const v = record[o.metric];
      if (typeof v !== "number") {
        throw new Error(`early stopping: the epoch record has no '${o.metric}'`);
      }
      if (sign * v > s.best + (o.minDelta ?? 0)) {
        s.best = sign * v;
        s.since = 0;
      } else if (++s.since >= o.patience) {
        return "stop";
      }
    },
  };
}
