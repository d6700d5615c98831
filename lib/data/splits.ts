/**
 * Deterministic splits: halves, class subsets with relabelling, binary class-pair tasks (and their
 * label-flipped twins), stratified sub-sampling and validation hold-out.
 *
 * @module
 */

import { Rng } from "../util/rng.ts";
import { type ImageDataset, subset } from "./dataset.ts";

/** The first and second half of a dataset, in stored order (GradNet: base net / GradNet data). */
export function halves(ds: ImageDataset): { first: ImageDataset; second: ImageDataset } {
  const h = Math.floor(ds.n / 2);
  const idx = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  return { first: subset(ds, idx(0, h)), second: subset(ds, idx(h, ds.n)) };
}

/** Examples of `classes` only, relabelled 0..k−1 in the order given. */
export function classSubset(ds: ImageDataset, classes: number[]): ImageDataset {
  const map = new Map(classes.map((c, i) => [c, i]));
  if (map.size !== classes.length) {
    throw new RangeError(`classSubset: repeated class in ${classes}`);
  }
  for (const c of classes) {
    if (!(c >= 0 && c < ds.numClasses)) {
      throw new RangeError(`class ${c} outside 0..${ds.numClasses - 1}`);
    }
  }
  const idx: number[] = [], lab: number[] = [];
  for (let i = 0; i < ds.n; i++) {
    const m = map.get(ds.labels[i]);
    if (m !== undefined) {
      idx.push(i);
      lab.push(m);
    }
  }
  return subset(ds, idx, {
    labels: lab,
    numClasses: classes.length,
    classNames: classes.map((c) => ds.classNames[c]),
    name: `${ds.name}[${classes.join(",")}]`,
  });
}

/** A binary task: class `positive` vs class `negative`. */
export interface PairTask {
  /** label 1 */
  positive: number;
  /** label 0 */
  negative: number;
  /** short name, e.g. "3v5" */
  id: string;
}

/** Binary dataset of a task: images of both classes, label 1 for `positive`. */
export function pairTaskDataset(ds: ImageDataset, t: PairTask): ImageDataset {
  const sub = classSubset(ds, [t.negative, t.positive]);
  return { ...sub, name: `${ds.name}:${t.id}` };
}

/**
 * Every unordered class pair (a < b) as the task "b vs a", plus, with `twins`, its label-flipped
 * twin "a vs b": 45 + 45 tasks for 10 classes.
 */
export function pairTasks(numClasses: number, twins = true): PairTask[] {
  const tasks: PairTask[] = [];
  for (let a = 0; a < numClasses; a++) {
    for (let b = a + 1; b < numClasses; b++) {
      tasks.push({ positive: b, negative: a, id: `${b}v${a}` });
      if (twins) tasks.push({ positive: a, negative: b, id: `${a}v${b}` });
    }
  }
  return tasks;
}

/** The label-flipped twin of a task. */
export function twinOf(t: PairTask): PairTask {
  return { positive: t.negative, negative: t.positive, id: `${t.negative}v${t.positive}` };
}

/** Indices of each class, in stored order. */
export function indicesByClass(ds: { labels: Int32Array; numClasses: number }): number[][] {
  const by: number[][] = Array.from({ length: ds.numClasses }, () => []);
  ds.labels.forEach((l, i) => by[l].push(i));
  return by;
}

/**
 * A stratified sample of `total` examples: each class keeps its share (largest remainders for the
 * rounding), chosen at random with `seed`; indices returned sorted.
 */
export function stratifiedSample(ds: ImageDataset, total: number, seed: number): number[] {
  if (total > ds.n) throw new RangeError(`cannot sample ${total} of ${ds.n} examples`);
  const rng = new Rng(seed);
  const by = indicesByClass(ds);
  const exact = by.map((c) => (c.length * total) / ds.n);
  const take = exact.map(Math.floor);
  let left = total - take.reduce((a, b) => a + b, 0);
  const order = exact.map((e, k) => [e - Math.floor(e), k]).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  for (const [, k] of order) {
    if (left-- <= 0) break;
    take[k]++;
  }
  const out: number[] = [];
  by.forEach((c, k) => {
    const perm = rng.permutation(c.length);
    for (let i = 0; i < take[k]; i++) out.push(c[perm[i]]);
  });
  return out.sort((a, b) => a - b);
}

/** Splits off a stratified validation set of `fraction` of the data. */
export function holdOut(
  ds: ImageDataset,
  fraction: number,
  seed: number,
): { train: ImageDataset; val: ImageDataset } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`hold-out fraction ${fraction} not in (0, 1)`);
  }
  const val = stratifiedSample(ds, Math.round(ds.n * fraction), seed);
  const inVal = new Uint8Array(ds.n);
  val.forEach((i) => (inVal[i] = 1));
  const train = [];
  for (let i = 0; i < ds.n; i++) if (!inVal[i]) train.push(i);
  return { train: subset(ds, train), val: subset(ds, val) };
}
