/**
 * A resumable training session in a run folder: restore the last checkpoint if there is one,
 * train with {@link fit}, checkpoint periodically, and keep `metrics.csv` current after every
 * epoch. Scripts call this instead of wiring checkpoints themselves.
 *
 * @module
 */

import type { LayerVariable, Variable } from "../util/tf_types.ts";
import type { RunDir } from "../run/run_dir.ts";
import { checkpointer, restoreCheckpoint } from "./checkpoint.ts";
import { type Callback, fit, type FitOptions, type TrainState } from "./fit.ts";
import type { Optimizer } from "./optimizers.ts";

/** Options of {@link trainInRun}. */
export interface SessionOptions<B extends { size: number }>
  extends Omit<FitOptions<B>, "checkpoint" | "state" | "params" | "optimizer"> {
  /** the run folder holding checkpoints and metrics */
  run: RunDir;
  /** trainable parameters */
  params: Variable[];
  /** every variable to checkpoint (trainable and not, e.g. batch-norm statistics) */
  variables?: Variable[] | LayerVariable[];
  /** the optimizer (its state is checkpointed too) */
  optimizer: Optimizer;
  /** checkpoint every this many steps (and at every epoch end) */
  checkpointEvery: number;
  /** checkpoint file name (several sessions can share a run folder) */
  name?: string;
  /** metrics file name */
  metricsFile?: string;
}

/** Trains (or continues training) and returns the final state. */
export async function trainInRun<B extends { size: number }>(
  o: SessionOptions<B>,
): Promise<TrainState> {
  const vars = o.variables ?? o.params;
  const name = o.name ?? "checkpoint.bin";
  const restored = await restoreCheckpoint(o.run, vars, o.optimizer, name);
  if (restored && !o.quiet) {
    const s = restored.state;
    console.error(
      `resuming ${o.label ?? "training"} at epoch ${s.epoch + 1}, step ${s.globalStep}`,
    );
  }
  const metricsWriter: Callback = {
    async onEpochEnd(_record, state) {
      await o.run.writeMetrics(state.history, o.metricsFile ?? "metrics.csv");
    },
  };
  return await fit({
    ...o,
    callbacks: [...(o.callbacks ?? []), metricsWriter],
    state: restored?.state,
    checkpoint: checkpointer(o.run, vars, o.optimizer, { everySteps: o.checkpointEvery, name }),
  });
}
