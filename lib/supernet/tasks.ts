/**
 * SuperNet's binary tasks (spec §2): a {@link PairTask} of the data library (class `negative` →
 * label 0, class `positive` → label 1) with its training and test images. The "flipped twin" of a
 * task has the same images and the labels swapped, so a generator that ignored z could not solve
 * both.
 *
 * - {@link pairTaskSet}: every pair of distinct classes and its flipped twin (CIFAR-10, MNIST,
 *   Fashion-MNIST: 45 pairs, 90 tasks) — the construction of the authors' experiment 2;
 * - {@link versusLastTaskSet}: class i vs the last class, i = 0 … K − 2 (experiment 1).
 *
 * @module
 */

import type { DatasetSplit, ImageDataset } from "../data/dataset.ts";
import { indicesByClass, type PairTask, pairTasks } from "../data/splits.ts";

/** One binary task with its images. */
export interface Task extends PairTask {
  /** position in the task list */
  index: number;
  /** short name, e.g. "8 vs 9" */
  name: string;
  /** index of the task with the same images and swapped labels, or −1 */
  twin: number;
  /** indices into the training and test datasets (both classes, stored order) */
  train: Int32Array;
  /** indices into the test dataset */
  test: Int32Array;
}

function withImages(pairs: PairTask[], train: ImageDataset, test: ImageDataset): Task[] {
  const byTrain = indicesByClass(train), byTest = indicesByClass(test);
  const both = (by: number[][], t: PairTask) =>
    Int32Array.from([...by[t.negative], ...by[t.positive]].sort((a, b) => a - b));
  const tasks = pairs.map((t, index) => ({
    ...t,
    index,
    name: `${train.classNames[t.positive]} vs ${train.classNames[t.negative]}`,
    twin: -1,
    train: both(byTrain, t),
    test: both(byTest, t),
  }));
  for (const t of tasks) {
    t.twin = tasks.findIndex((u) => u.positive === t.negative && u.negative === t.positive);
  }
  return tasks;
}

/** Every class pair and its flipped twin, adjacent: tasks 2p and 2p + 1 are twins. */
export function pairTaskSet(train: ImageDataset, test: ImageDataset): Task[] {
  return withImages(pairTasks(train.numClasses, true), train, test);
}

/** Class i (label 0) vs the last class (label 1), for every other class i; no twins. */
export function versusLastTaskSet(train: ImageDataset, test: ImageDataset): Task[] {
  const k = train.numClasses - 1;
  const pairs = Array.from(
    { length: k },
    (_, i) => ({ positive: k, negative: i, id: `${k}v${i}` }),
  );
  return withImages(pairs, train, test);
}

/** The 0/1 label of dataset image `i` in `task`. */
export function taskLabel(task: Task, ds: ImageDataset, i: number): number {
  return ds.labels[i] === task.positive ? 1 : 0;
}

/** The task list, the trained tasks and the two held-out ones. */
export function splitTasks(all: Task[], kind: string): {
  trained: Task[];
  heldOut: { kind: string; task: Task; twinIndex: number }[];
} {
  if (kind === "versus-last") {
    const task = all.at(-1)!;
    return { trained: all.slice(0, -1), heldOut: [{ kind: "unseen class", task, twinIndex: -1 }] };
  }
  // pairs come as (a, b), (b, a): hold out the flipped twin of the last pair, and the
  // second-to-last pair in both orientations
  const n = all.length;
  const flipped = all[n - 1], unseen = all[n - 4];
  const excluded = new Set([flipped.index, unseen.index, unseen.twin]);
  const trained = all.filter((t) => !excluded.has(t.index));
  const twinIndex = trained.findIndex((t) => t.index === flipped.twin);
  return {
    trained,
    heldOut: [
      { kind: "flipped twin of a trained pair", task: flipped, twinIndex },
      { kind: "pair never seen", task: unseen, twinIndex: -1 },
    ],
  };
}

/**
 * The tasks of a dataset: "pairs" (every ordered class pair, i.e. pairs and their flipped twins;
 * consecutive pairs (2j, 2j + 1) for more than 10 classes, as the original) or "versus-last".
 */
export function tasksOf(split: DatasetSplit, kind: string): Task[] {
  if (kind === "versus-last") return versusLastTaskSet(split.train, split.test);
  const all = pairTaskSet(split.train, split.test);
  if (split.train.numClasses <= 10) return all;
  // many classes: consecutive pairs (2j, 2j + 1) and their twins, as the original's experiment 2
  const kept = all.filter((t) =>
    Math.min(t.positive, t.negative) % 2 === 0 && Math.abs(t.positive - t.negative) === 1
  );
  return kept.map((t, index) => ({ ...t, index, twin: kept.findIndex((u) => u.index === t.twin) }));
}
