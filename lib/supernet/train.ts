/**
 * SuperNet's two phases (spec §2 and §4).
 *
 * Training: for each step a random training task k, z = one-hot(k), a batch drawn with
 * replacement from that task's training images; C's sigmoid cross-entropy on the generated
 * weights trains G (RMSProp, TF1 form). Resumable in a run folder.
 *
 * Adaptation to a held-out task, equal step budgets, one arm at a time:
 * - `z-only`: G frozen, only z trains (the method; G's checksum is compared before and after);
 * - `z+G`: z and G train (what the original code probably did); G is restored afterwards;
 * - `scratch`: the same classifier with ordinary weights trained from Glorot init;
 * - `random-z`: the initial random z, no training;
 * - `twin-z`: z = one-hot of the task's flipped twin, no training (≈ inverted predictions).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor1D, Tensor4D, Variable } from "../util/tf_types.ts";
import { imageBatch, type ImageDataset } from "../data/dataset.ts";
import type { RunDir } from "../run/run_dir.ts";
import type { EpochRecord } from "../train/fit.ts";
import { RmsProp } from "../train/optimizers.ts";
import { trainInRun } from "../train/session.ts";
import { Rng } from "../util/rng.ts";
import { variableFrom } from "../util/tensors.ts";
import {
  binaryLoss,
  classifierLogits,
  type Generator,
  initClassifierWeights,
  type TensorSpec,
} from "./networks.ts";
import { type Task, taskLabel } from "./tasks.ts";

/** How pixels reach the classifier: 0–1 (default, a documented deviation) or raw 0–255. */
export type Scaling = "unit" | "raw";

/** Train and test images. */
export interface SuperNetData {
  /** training images */
  train: ImageDataset;
  /** test images */
  test: ImageDataset;
  /** how pixels are scaled */
  scaling: Scaling;
}

/** Images `idx` of `ds` with their 0/1 labels in `task`. */
export function taskBatch(
  ds: ImageDataset,
  task: Task,
  idx: ArrayLike<number>,
  scaling: Scaling,
): { x: Tensor4D; y: Tensor1D } {
  return {
    x: imageBatch(ds, idx, scaling === "unit" ? 1 / 255 : 1),
    y: tf.tensor1d(Array.from(idx, (i) => taskLabel(task, ds, i))),
  };
}

/** Accuracy and loss of weights `w` on images `idx` of `ds` (labels from `task`). */
async function metricsOn(
  w: () => Tensor[],
  task: Task,
  ds: ImageDataset,
  idx: ArrayLike<number>,
  scaling: Scaling,
  batch = 500,
): Promise<{ acc: number; loss: number }> {
  let correct = 0, loss = 0;
  const all = Int32Array.from(idx);
  for (let s = 0; s < all.length; s += batch) {
    const part = all.subarray(s, s + batch);
    const r = tf.tidy(() => {
      const { x, y } = taskBatch(ds, task, part, scaling);
      const logits = classifierLogits(x, w());
      const hit = tf.equal(tf.greater(logits, 0).toFloat(), y).sum();
      return tf.stack([hit.toFloat(), binaryLoss(logits, y).mul(part.length)]);
    });
    const [h, l] = await r.data();
    r.dispose();
    correct += h;
    loss += l;
  }
  return { acc: correct / all.length, loss: loss / all.length };
}

/** Test accuracy and loss of the classifier on weights `w` over (up to `limit` of) a task's test images. */
export function taskTestMetrics(
  w: () => Tensor[],
  task: Task,
  data: SuperNetData,
  limit = 0,
): Promise<{ acc: number; loss: number }> {
  const idx = limit > 0 ? task.test.subarray(0, limit) : task.test;
  return metricsOn(w, task, data.test, idx, data.scaling);
}

/** One-hot task vector. */
export function oneHotZ(k: number, zDim: number): Tensor1D {
  if (k < 0 || k >= zDim) throw new RangeError(`task index ${k} outside z's ${zDim} dimensions`);
  return tf.tidy(() => tf.oneHot(tf.tensor1d([k], "int32"), zDim).reshape([zDim]) as Tensor1D);
}

/** Options of {@link trainGenerator}. */
export interface GeneratorTrainOptions {
  /** generator training steps */
  steps: number;
  /** evaluate every this many steps */
  evalEvery: number;
  /** images per step */
  batch: number;
  /** RMSProp learning rate */
  lr: number;
  /** seed of the task and image draws */
  seed: number;
  /** checkpoint every this many steps */
  checkpointEvery: number;
  /** test images per task in the periodic evaluation (0: all) */
  evalImages: number;
  /** prefix of the checkpoint and metrics files */
  tag: string;
  /** no progress line */
  quiet?: boolean;
}

/**
 * Trains G on `tasks` (task j gets z = one-hot(j)); returns the per-evaluation history (mean test
 * accuracy over the training tasks).
 */
export async function trainGenerator(
  run: RunDir,
  G: Generator,
  tasks: Task[],
  data: SuperNetData,
  o: GeneratorTrainOptions,
): Promise<EpochRecord[]> {
  const segments = Math.ceil(o.steps / o.evalEvery);
  const zs = tasks.map((_, j) => oneHotZ(j, G.zDim));
  const state = await trainInRun({
    run,
    name: `${o.tag}-checkpoint.bin`,
    metricsFile: `${o.tag}-metrics.csv`,
    label: o.tag,
    quiet: o.quiet,
    params: G.variables,
    optimizer: new RmsProp(G.variables, { rho: 0.9, epsilon: 1e-10, initialMeanSquare: 1 }),
    baseLr: o.lr,
    schedule: { kind: "constant" },
    epochs: segments,
    stepsPerEpoch: o.evalEvery,
    rng: new Rng(o.seed),
    checkpointEvery: o.checkpointEvery,
    makeBatch(_segment, _step, rng) {
      const k = rng.int(tasks.length), t = tasks[k];
      const idx = Array.from({ length: o.batch }, () => t.train[rng.int(t.train.length)]);
      return { ...taskBatch(data.train, t, idx, data.scaling), k, size: o.batch };
    },
    lossFn(b) {
      const logits = classifierLogits(b.x, G.generate(zs[b.k]));
      return {
        loss: binaryLoss(logits, b.y),
        correct: tf.equal(tf.greater(logits, 0).toFloat(), b.y).sum() as Scalar,
      };
    },
    async evaluate() {
      let acc = 0;
      for (let j = 0; j < tasks.length; j++) {
        acc += (await taskTestMetrics(() => G.generate(zs[j]), tasks[j], data, o.evalImages)).acc;
      }
      return { test_acc: acc / tasks.length };
    },
  });
  tf.dispose(zs);
  return state.history;
}

/** The adaptation arms. */
export const ARMS = ["z-only", "z+G", "scratch", "random-z", "twin-z"] as const;
/** One adaptation arm. */
export type Arm = typeof ARMS[number];

/** Options of {@link adaptArm}. */
export interface AdaptOptions {
  /** step budget per learning rate */
  maxSteps: number;
  /** validate every this many steps */
  evalEvery: number;
  /** stop after this many validations without a lower validation loss */
  patience: number;
  /** images per step */
  batch: number;
  /** learning rates tried for the arms that train (RMSProp), the best chosen on validation */
  lrs: number[];
  /** forms of z tried for `z-only` (each with every learning rate), the best chosen on validation */
  zForms: ZForm[];
  /** validation images carved from the task's training images (at most a fifth of them) */
  valImages: number;
  /** seed of the split, the batches and the initial z */
  seed: number;
  /** z index of the held-out task's flipped twin among the trained tasks, or −1 */
  twinIndex: number;
  /** no progress line */
  quiet?: boolean;
}

/**
 * How the adapted z is parameterised: `plain` trains z itself; `two-vector` is the original's
 * z = Dense(1 → zDim)(1) = w + b (w Glorot-uniform, b = 0), whose RMSProp step on z is twice as long.
 */
export const Z_FORMS = ["plain", "two-vector"] as const;
/** One form of z (see {@link Z_FORMS}). */
export type ZForm = typeof Z_FORMS[number];

/** One validation point of an adaptation run. */
export interface ValPoint {
  /** adaptation step */
  step: number;
  /** validation accuracy */
  val_acc: number;
  /** validation loss */
  val_loss: number;
}

/** What an arm reports. */
export interface ArmOutcome {
  /** the arm */
  arm: Arm;
  /** the learning rate chosen on validation (null: the arm does not train) */
  lr: number | null;
  /** the z form chosen on validation (null: the arm has no trained z form choice) */
  zForm: ZForm | null;
  /** the step whose weights were kept (lowest validation loss of the chosen learning rate) */
  step: number;
  /** why the chosen run ended: "patience" (validation loss flat), "budget" or "no training" */
  stopped: "patience" | "budget" | "no training";
  /** the test images scored once, with the chosen weights */
  testAcc: number;
  /** test loss of the chosen weights */
  testLoss: number;
  /** validation curve of every learning rate (and z form) tried */
  valCurves: { lr: number | null; zForm: ZForm | null; points: ValPoint[] }[];
  /** wall time of the arm, every learning rate */
  seconds: number;
  /** G's checksum before and after (z-only must leave it unchanged) */
  generatorBefore: string;
  /** G's checksum after the arm */
  generatorAfter: string;
}

/**
 * The task's training images split into adaptation and validation images (seeded shuffle; the
 * validation part at most a fifth).
 */
export function adaptationSplit(
  task: Task,
  valImages: number,
  seed: number,
): { train: Int32Array; val: Int32Array } {
  const idx = Int32Array.from(task.train);
  new Rng(seed * 31 + 7).shuffle(idx);
  const v = Math.max(1, Math.min(valImages, Math.floor(idx.length / 5)));
  return { val: idx.slice(0, v), train: idx.slice(v) };
}

/**
 * Adapts to `task` with one arm. An arm that trains runs once per learning rate in `o.lrs`, each
 * from the same start, validating every `evalEvery` steps on images carved from the task's training
 * images and stopping when the validation loss has not fallen for `patience` validations (or at
 * `maxSteps`); the learning rate and step with the lowest validation loss are kept, and only those
 * weights are scored on the test images. G is left as it was found (restored after `z+G`).
 */
export async function adaptArm(
  arm: Arm,
  G: Generator,
  spec: TensorSpec[],
  task: Task,
  data: SuperNetData,
  o: AdaptOptions,
): Promise<ArmOutcome> {
  const t0 = performance.now();
  const before = await G.checksum();
  if (arm === "twin-z" && o.twinIndex < 0) {
    throw new RangeError(`${task.name}: no trained twin for twin-z`);
  }
  const split = adaptationSplit(task, o.valImages, o.seed);
  const rng = new Rng(o.seed * 7 + 3);
  // the original: z = Dense(1 → 100)(1) = w + b with w Glorot-uniform (±√(6/101)), b = 0
  const lim = Math.sqrt(6 / (1 + G.zDim));
  const zInit = Float32Array.from({ length: G.zDim }, () => rng.uniform(-lim, lim));
  const z = variableFrom(tf.tensor1d(zInit));
  // the original's bias vector b of z = w + b (trained only in the two-vector form)
  const zBias = variableFrom(tf.zeros([G.zDim]));
  let form: ZForm = "plain";
  const zNow = (): Tensor1D => (form === "plain" ? z : tf.add(z, zBias)) as Tensor1D;
  const snapshot = arm === "z+G" ? await G.snapshot() : null;
  const own = arm === "scratch" ? initClassifierWeights(spec, o.seed + 11) : null;
  const ownInit = own ? await Promise.all(own.map((v) => v.data() as Promise<Float32Array>)) : null;
  const twinZ = arm === "twin-z" ? oneHotZ(o.twinIndex, G.zDim) : null;
  const weights = () => own ? own as Tensor[] : G.generate(twinZ ?? zNow());
  const paramsOf = (f: ZForm): Variable[] | null =>
    arm === "z-only"
      ? (f === "plain" ? [z] : [z, zBias])
      : arm === "z+G"
      ? [z, ...G.variables]
      : own;
  const val = () => metricsOn(weights, task, data.train, split.val, data.scaling);
  // the weights a run trains, copied to the host (the best of each run, then of all runs)
  const save = (params: Variable[]): Promise<Float32Array[]> =>
    Promise.all(params.map(async (p) => Float32Array.from(await p.data())));
  const load = (params: Variable[], w: Float32Array[]) =>
    tf.tidy(() => params.forEach((p, i) => p.assign(tf.tensor(w[i], p.shape))));
  const valCurves: ArmOutcome["valCurves"] = [];
  let best:
    | { loss: number; lr: number | null; form: ZForm; step: number; w: Float32Array[] }
    | null = null;
  let stopped: ArmOutcome["stopped"] = "no training";
  const forms: ZForm[] = arm === "z-only" ? o.zForms : ["plain"];
  if (!paramsOf("plain") || o.maxSteps <= 0) {
    const m = await val();
    valCurves.push({
      lr: null,
      zForm: null,
      points: [{ step: 0, val_acc: m.acc, val_loss: m.loss }],
    });
  } else {
    for (const f of forms) {
      form = f;
      const params = paramsOf(f)!;
      for (const lr of o.lrs) {
        // every run from the same start
        tf.tidy(() => {
          z.assign(tf.tensor1d(zInit));
          zBias.assign(tf.zeros([G.zDim]));
        });
        if (snapshot) G.restore(snapshot);
        if (own && ownInit) {
          tf.tidy(() => own.forEach((v, i) => v.assign(tf.tensor(ownInit[i], v.shape))));
        }
        const optimizer = new RmsProp(params, { rho: 0.9, epsilon: 1e-10, initialMeanSquare: 1 });
        const bRng = new Rng(o.seed * 13 + 5);
        const points: ValPoint[] = [];
        let runBest: { loss: number; step: number; w: Float32Array[] } | null = null;
        let since = 0, why: ArmOutcome["stopped"] = "budget";
        for (let step = 0; step <= o.maxSteps; step++) {
          if (step % o.evalEvery === 0 || step === o.maxSteps) {
            const m = await val();
            points.push({ step, val_acc: m.acc, val_loss: m.loss });
            if (!runBest || m.loss < runBest.loss) {
              runBest = { loss: m.loss, step, w: await save(params) };
              since = 0;
            } else if (++since >= o.patience) {
              why = "patience";
              break;
            }
          }
          if (step === o.maxSteps) break;
          const idx = Array.from(
            { length: o.batch },
            () => split.train[bRng.int(split.train.length)],
          );
          const { value, grads } = tf.variableGrads(() =>
            tf.tidy(() => {
              const { x, y } = taskBatch(data.train, task, idx, data.scaling);
              return binaryLoss(classifierLogits(x, weights()), y);
            }), params);
          optimizer.apply(params.map((p) => grads[p.name]), lr);
          tf.dispose([value, ...Object.values(grads)]);
        }
        optimizer.dispose();
        const zForm = arm === "z-only" ? f : null;
        valCurves.push({ lr, zForm, points });
        if (!o.quiet) {
          console.error(
            `  ${task.name} ${arm}${
              zForm ? ` (${zForm} z)` : ""
            }, lr ${lr}: best validation loss ` +
              `${runBest!.loss.toFixed(4)} at step ${runBest!.step} ` +
              `(${why === "patience" ? "flat" : "budget end"})`,
          );
        }
        if (!best || runBest!.loss < best.loss) {
          best = { loss: runBest!.loss, lr, form: f, step: runBest!.step, w: runBest!.w };
          stopped = why;
        }
      }
    }
    form = best!.form;
    load(paramsOf(form)!, best!.w);
  }
  const test = await taskTestMetrics(weights, task, data);
  const after = await G.checksum();
  if (snapshot) G.restore(snapshot);
  tf.dispose([z, zBias, ...(own ?? []), ...(twinZ ? [twinZ] : [])]);
  return {
    arm,
    lr: best?.lr ?? null,
    zForm: arm === "z-only" && best ? best.form : null,
    step: best?.step ?? 0,
    stopped,
    testAcc: test.acc,
    testLoss: test.loss,
    valCurves,
    seconds: (performance.now() - t0) / 1000,
    generatorBefore: before,
    generatorAfter: after,
  };
}
