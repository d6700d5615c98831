/**
 * Checkpoints of a training run: model variables, optimizer state and the loop's
 * {@link TrainState} (epoch, step, RNG, history) in one bundle file of the run folder, replaced
 * atomically. Restoring them continues the run exactly.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { RunDir } from "../run/run_dir.ts";
import { arraysToVariables, variablesToArrays } from "../run/model_io.ts";
import type { NamedArray } from "../run/bundle.ts";
import type { Optimizer, OptimizerState } from "./optimizers.ts";
import type { TrainState } from "./fit.ts";

type Vars = tf.Variable[] | tf.LayerVariable[];

interface CheckpointMeta {
  state: TrainState;
  optimizer: { kind: string; step: number; slots: string[] };
  extra?: unknown;
}

/** Saving for {@link fit}'s `checkpoint` option. */
export function checkpointer(
  run: RunDir,
  vars: Vars,
  optimizer: Optimizer,
  o: { everySteps: number; name?: string; extra?: () => unknown } = { everySteps: 500 },
): { everySteps: number; save(state: TrainState): Promise<void> } {
  return {
    everySteps: o.everySteps,
    async save(state) {
      const opt = await optimizer.getState();
      const slotArrays: NamedArray[] = Object.entries(opt.slots).map(([k, v]) => ({
        name: `opt:${k}`,
        shape: v.shape,
        values: v.values,
      }));
      const meta: CheckpointMeta = {
        state,
        optimizer: { kind: opt.kind, step: opt.step, slots: Object.keys(opt.slots) },
        extra: o.extra?.(),
      };
      await run.saveCheckpoint(
        meta,
        [...(await variablesToArrays(vars, "var:")), ...slotArrays],
        o.name,
      );
    },
  };
}

/**
 * Restores variables and optimizer from the run's checkpoint.
 * @returns the saved state (and extra), or null when the run has no checkpoint yet
 */
export async function restoreCheckpoint(
  run: RunDir,
  vars: Vars,
  optimizer: Optimizer,
  name?: string,
): Promise<{ state: TrainState; extra: unknown } | null> {
  const ck = await run.loadCheckpoint<CheckpointMeta>(name);
  if (!ck) return null;
  arraysToVariables(vars, "var:", ck.tensors);
  const slots: OptimizerState["slots"] = {};
  for (const k of ck.meta.optimizer.slots) {
    const a = ck.tensors.get(`opt:${k}`);
    if (!a) throw new Error(`checkpoint lacks optimizer slot ${k}`);
    slots[k] = { shape: a.shape, values: a.values };
  }
  optimizer.setState({ kind: ck.meta.optimizer.kind, step: ck.meta.optimizer.step, slots });
  return { state: ck.meta.state, extra: ck.meta.extra };
}
