/**
 * GradNet — a classifier on the per-example gradient vectors of a pre-trained CNN
 * (Aleksziev, Daróczy, Benczúr; spec: shared/papers/gradnet.md; code: daroczyb/gradnet).
 *
 *   deno task gradnet                                   # MNIST, CPU-sized (h = 16), 3-rung ladder
 *   deno task gradnet --dataset=cifar10 --data-dir=DIR  # CIFAR-10, 4 rungs
 *   deno task gradnet --preset=paper                    # h = 64, 5+100+25, 200 epochs
 *   deno task gradnet --study=normalization             # one of the authors' comparisons
 *   deno task gradnet --resume=results/gradnet/<run>    # continue an interrupted run
 *
 * Steps: train the base network cnn_cifar(h) on the first half of the training set, snapshotting
 * it when its test accuracy first reaches each rung of a ladder; for each snapshot, train GradNet
 * on gradient features of the second half (fresh random label per visit, true label as target)
 * and test it with the sum-of-logits rule over all 10 label gradients; report base vs GradNet.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { COMMON_CHOICES, COMMON_DEFAULTS, COMMON_DOCS, runCli } from "../lib/config/cli.ts";
import { RunDir } from "../lib/run/run_dir.ts";
import { type DatasetName, firstN, loadNamedDataset, syntheticSplit } from "../lib/data/named.ts";
import { startRun } from "../lib/run/start.ts";
import type { DatasetSplit } from "../lib/data/dataset.ts";
import { halves } from "../lib/data/splits.ts";
import { cnnCifar, countParams } from "../lib/models/cnn_cifar.ts";
import { GradNet, parseStructure } from "../lib/models/gradnet.ts";
import { netFromModel } from "../lib/gradients/network.ts";
import {
  type CoordinateStats,
  type Normalization,
  NORMALIZATIONS,
} from "../lib/gradients/normalize.ts";
import { decodeBundle, encodeBundle } from "../lib/run/bundle.ts";
import type { OptimizerConfig } from "../lib/train/optimizers.ts";
import type { Rung } from "../lib/train/callbacks.ts";
import { type AugmentPolicy, viewShape } from "../lib/gradnet/preprocess.ts";
import { accuracy, loadSnapshot, trainBaseLadder } from "../lib/gradnet/base.ts";
import { Featurizer } from "../lib/gradnet/features.ts";
import {
  accuracyOf,
  gradientStatistics,
  gradNetPredict,
  type TestRule,
  trainGradNet,
} from "../lib/gradnet/train.ts";
import { type RungResult, tableMarkdown, writeCurves, writeTable } from "../lib/gradnet/report.ts";
import type { Series } from "../lib/plot/figures.ts";
import { UserError } from "../lib/util/errors.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const DATASETS = ["mnist", "fashion", "cifar10", "synthetic"] as const;
const STUDIES = [
  "none",
  "optimizer",
  "regularization",
  "selection",
  "structure",
  "normalization",
] as const;

export const DEFAULTS = {
  ...COMMON_DEFAULTS,
  out: "results",
  resume: "",
  threads: 0,
  dataset: "mnist",
  trainImages: 0,
  testImages: 0,
  h: 16,
  targets: [] as number[],
  augment: "auto",
  crop: 24,
  baseLr: 0.05,
  baseWeightDecay: 5e-4,
  baseBatch: 64,
  baseHalveEvery: 25,
  baseMaxEpochs: 10,
  baseEvalEvery: 50,
  structure: "5+25+10",
  dropout: 0,
  batchNorm: false,
  optimizer: "sgd",
  lr: 0.01,
  batch: 25,
  epochs: 3,
  sparsify: true,
  selectionPercent: 15,
  normalization: "scale_power",
  exponent: 0,
  statsFrom: "gradnet-half",
  testRule: "sum",
  study: "none",
  studyRung: -1,
  curveTestImages: 1000,
  chunk: 500,
  checkpointEvery: 200,
};

export type GradNetConfig = typeof DEFAULTS;

const DOCS: Record<keyof GradNetConfig, string> = {
  ...COMMON_DOCS,
  out: "folder under which results/gradnet/<run>/ is written",
  resume: "continue the run in this folder (its config.json is used; other flags are ignored)",
  threads: "compute threads for the native backend (0: all cores)",
  dataset: "dataset",
  trainImages: "use the first N training images (0: all), split in halves: base net | GradNet",
  testImages: "use the first N test images (0: all)",
  h: "base network width cnn_cifar(h) (paper 64; CPU setting 16)",
  targets: "ladder of base test accuracies to snapshot at (empty: the dataset's default)",
  augment: "auto (CIFAR: crop/flip/contrast; MNIST-like: none) | none | cifar",
  crop: "crop size of the CIFAR augmentation",
  baseLr: "base network SGD learning rate",
  baseWeightDecay: "base network weight decay",
  baseBatch: "base network batch size",
  baseHalveEvery: "halve the base learning rate every this many epochs",
  baseMaxEpochs: "stop base training after this many epochs even if rungs are missing",
  baseEvalEvery: "measure the base test accuracy every this many steps (ladder resolution)",
  structure: "GradNet hidden units per block, e.g. 5+25+10 (one more part: biases get a 4th block)",
  dropout: "GradNet dropout rate on the hidden layer (0: off)",
  batchNorm: "GradNet batch normalisation (no γ) on the hidden layer",
  optimizer: "GradNet optimizer",
  lr: "GradNet learning rate (the original: SGD 0.01)",
  batch: "GradNet batch size (the original: 25)",
  epochs: "GradNet epochs over its training half (the original: 200)",
  sparsify: "keep only the top selection-percent of each layer's gradient by magnitude",
  selectionPercent: "percent kept per layer by the sparsification",
  normalization: "feature normalisation",
  exponent: "power exponent (0: 0.125 for power, 0.5 for scale_power)",
  statsFrom: "[inf] min/max statistics: one pass over the GradNet half, random labels",
  testRule: "sum (the method) | true-label (leaks the label: an upper bound) | random-label",
  study: "run one of the authors' comparisons instead of the ladder table",
  studyRung: "rung a study uses (−1: the middle one)",
  curveTestImages: "test images for GradNet's per-epoch learning curve",
  chunk: "examples per gradient-feature chunk",
  checkpointEvery: "GradNet checkpoint every this many steps",
};

const DATASET_TARGETS: Record<string, number[]> = {
  mnist: [0.92, 0.96, 0.985],
  fashion: [0.75, 0.8, 0.85],
  cifar10: [0.45, 0.5, 0.55, 0.6],
  synthetic: [0.3, 0.6],
};

const SPEC = {
  description:
    "gradnet — GradNet: a classifier on per-example gradients of a pre-trained CNN; base vs GradNet per rung",
  usage:
    "deno task gradnet [--dataset=mnist|fashion|cifar10] [--preset=smoke|default|paper] [--key=value ...]",
  defaults: DEFAULTS,
  docs: DOCS,
  choices: {
    backend: COMMON_CHOICES.backend,
    dataset: DATASETS,
    augment: ["auto", "none", "cifar"],
    optimizer: ["sgd", "adam"],
    normalization: NORMALIZATIONS,
    testRule: ["sum", "true-label", "random-label"],
    study: STUDIES,
    statsFrom: ["gradnet-half"],
  },
  integers: [
    "seed",
    "threads",
    "trainImages",
    "testImages",
    "h",
    "crop",
    "baseBatch",
    "baseHalveEvery",
    "baseMaxEpochs",
    "baseEvalEvery",
    "batch",
    "epochs",
    "studyRung",
    "curveTestImages",
    "chunk",
    "checkpointEvery",
  ] as const,
  presets: {
    smoke: {
      dataset: "synthetic",
      trainImages: 400,
      testImages: 60,
      h: 4,
      baseMaxEpochs: 8,
      baseEvalEvery: 3,
      structure: "2+3+2",
      epochs: 1,
      curveTestImages: 20,
      chunk: 100,
      checkpointEvery: 4,
    },
    default: {},
    paper: { h: 64, structure: "5+100+25", epochs: 200, baseMaxEpochs: 100, curveTestImages: 2000 },
  } as Record<string, Partial<GradNetConfig>>,
  presetDocs: {
    smoke: "seconds, tiny synthetic data (tests)",
    default: "MNIST, h = 16, 5+25+10, 3 epochs: about 10 minutes on 2 cores",
    paper: "the paper's sizes: h = 64, 5+100+25, 200 epochs (days on a CPU)",
  },
};

// ---------------------------------------------------------------------------------------------
// Data

async function loadData(cfg: GradNetConfig): Promise<DatasetSplit> {
  if (cfg.dataset !== "synthetic") {
    return await loadNamedDataset(cfg.dataset as DatasetName, cfg.dataDir);
  }
  return syntheticSplit({
    n: 2000,
    train: 1500,
    height: 28,
    width: 28,
    channels: 1,
    numClasses: 10,
    seed: 7,
    noise: 40,
  });
}

// ---------------------------------------------------------------------------------------------
// One GradNet on one rung

interface Setting {
  name: string;
  structure: string;
  optimizer: OptimizerConfig;
  lr: number;
  dropout: number;
  batchNorm: boolean;
  sparsify: boolean;
  selectionPercent: number;
  normalization: Normalization;
  exponent: number;
}

function settingOf(cfg: GradNetConfig, name: string): Setting {
  return {
    name,
    structure: cfg.structure,
    optimizer: cfg.optimizer === "adam" ? { kind: "adam" } : { kind: "sgd" },
    lr: cfg.lr,
    dropout: cfg.dropout,
    batchNorm: cfg.batchNorm,
    sparsify: cfg.sparsify,
    selectionPercent: cfg.selectionPercent,
    normalization: cfg.normalization as Normalization,
    exponent: cfg.exponent,
  };
}

async function statistics(
  run: RunDir,
  file: string,
  f: Featurizer,
  data: { gnTrain: DatasetSplit["train"] },
  o: { seed: number; chunk: number; policy: AugmentPolicy; crop: number },
): Promise<CoordinateStats> {
  try {
    const b = decodeBundle<{ count: number }>(await Deno.readFile(run.file(file)));
    const g = (k: string) => b.tensors.get(k)!.values.slice();
    return { count: b.meta.count, min: g("min"), max: g("max"), mean: g("mean"), std: g("std") };
  } catch { /* not computed yet */ }
  const s = await gradientStatistics(f, data.gnTrain, o);
  const arr = (name: string, values: Float32Array) => ({ name, shape: [values.length], values });
  await run.writeBytes(
    file,
    encodeBundle({ count: s.count }, [
      arr("min", s.min),
      arr("max", s.max),
      arr("mean", s.mean),
      arr("std", s.std),
    ]),
  );
  return s;
}

/** Trains one GradNet setting on the base network as it stands; returns its test accuracy. */
async function runSetting(
  run: RunDir,
  cfg: GradNetConfig,
  base: tf.LayersModel,
  data: { gnTrain: DatasetSplit["train"]; test: DatasetSplit["test"]; testIdx: number[] },
  s: Setting,
  tag: string,
): Promise<{ acc: number; curve: { step: number; acc: number }[] }> {
  const hidden = parseStructure(s.structure);
  const ops = netFromModel(base);
  const kernelBlocks = ops.filter((o) => o.kind === "conv" || o.kind === "dense").length;
  if (hidden.length !== kernelBlocks && hidden.length !== kernelBlocks + 1) {
    throw new UserError(
      `--structure ${s.structure}: ${hidden.length} blocks, the base network has ${kernelBlocks} layers (or ${
        kernelBlocks + 1
      } with a bias block)`,
    );
  }
  const biasBlock = hidden.length === kernelBlocks + 1;
  const f = new Featurizer(ops, {
    sparsify: s.sparsify,
    selectionPercent: s.selectionPercent,
    normalization: s.normalization,
    exponent: s.exponent || undefined,
  }, biasBlock ? { includeBias: true, biasLast: true } : {});
  const view = { policy: policyOf(cfg), crop: cfg.crop };
  const statsTag = `${tag}-${s.sparsify ? s.selectionPercent : "all"}${biasBlock ? "-bias" : ""}`;
  f.stats = await statistics(run, `stats-${statsTag}.bin`, f, data, {
    seed: cfg.seed,
    chunk: cfg.chunk,
    ...view,
  });
  // Block sizes: one per kernel, and (4-block variant) all biases together.
  const kernels = f.layout.blocks.filter((b) => b.part === "kernel").map((b) => b.size);
  const biases = f.layout.blocks.filter((b) => b.part === "bias").reduce((a, b) => a + b.size, 0);
  const net = new GradNet({
    blockSizes: biasBlock ? [...kernels, biases] : kernels,
    hidden,
    classes: data.test.numClasses,
    dropout: s.dropout,
    batchNorm: s.batchNorm,
    seed: cfg.seed + 17,
  });
  const state = await trainGradNet(run, net, f, data.gnTrain, data.test, {
    seed: cfg.seed,
    epochs: cfg.epochs,
    batch: cfg.batch,
    lr: s.lr,
    optimizer: s.optimizer,
    chunk: cfg.chunk,
    ...view,
    curveTestImages: cfg.curveTestImages,
    checkpointEvery: cfg.checkpointEvery,
    name: `gradnet-${tag}-${s.name}`,
  });
  const preds = await gradNetPredict(net, f, data.test, data.testIdx, {
    rule: cfg.testRule as TestRule,
    ...view,
    seed: cfg.seed,
    label: `GradNet test (${cfg.testRule})`,
  });
  const acc = accuracyOf(preds, data.test, data.testIdx);
  const curve = state.history.map((h) => ({ step: h.step, acc: h.curve_test_acc ?? NaN }));
  net.dispose();
  return { acc, curve };
}

function policyOf(cfg: GradNetConfig): AugmentPolicy {
  if (cfg.augment === "auto") return cfg.dataset === "cifar10" ? "cifar" : "none";
  return cfg.augment as AugmentPolicy;
}

/** The settings of a study (the authors' five comparisons). */
function studySettings(cfg: GradNetConfig, study: string): Setting[] {
  const base = settingOf(cfg, "default");
  const v = (name: string, p: Partial<Setting>): Setting => ({ ...base, ...p, name });
  switch (study) {
    case "optimizer":
      return [
        v("sgd", { optimizer: { kind: "sgd" }, lr: 0.01 }),
        v("adam", { optimizer: { kind: "adam" }, lr: 1e-3 }),
      ];
    case "regularization":
      return [
        v("none", { dropout: 0, batchNorm: false }),
        v("dropout", { dropout: 0.5 }),
        v("batchnorm", { batchNorm: true }),
      ];
    case "selection":
      return [5, 15, 30].map((q) => v(`top${q}`, { sparsify: true, selectionPercent: q })).concat(
        v("all", { sparsify: false }),
      );
    case "structure": {
      const small = cfg.h <= 16
        ? ["5+25+10", "5+100+25", "5+22+11+3"]
        : ["5+25+10", "5+100+25", "5+22+11+3"];
      return small.map((st) => v(st.replaceAll("+", "-"), { structure: st }));
    }
    case "normalization":
      return NORMALIZATIONS.map((n) => v(n, { normalization: n }));
  }
  throw new UserError(`unknown study ${study}`);
}

// ---------------------------------------------------------------------------------------------
// Main

/** What a run returns (for notebooks and tests). */
export interface GradNetResult {
  run: RunDir;
  table: RungResult[];
  curves: Series[];
  title: string;
  study?: { name: string; baseAcc: number; results: Record<string, number>; curves: Series[] };
}

export async function main(
  cfgIn: GradNetConfig,
  o: { quiet?: boolean } = {},
): Promise<GradNetResult> {
  const t0 = performance.now();
  const { run, cfg } = await startRun("gradnet", cfgIn, DEFAULTS as GradNetConfig);

  // data
  const all = await loadData(cfg);
  const train = firstN(all.train, cfg.trainImages), test = firstN(all.test, cfg.testImages);
  const { first: baseTrain, second: gnTrain } = halves(train);
  const testIdx = Array.from({ length: test.n }, (_, i) => i);
  const policy = policyOf(cfg);
  const targets = cfg.targets.length ? cfg.targets : DATASET_TARGETS[cfg.dataset];
  console.error(
    `${cfg.dataset}: base net trains on ${baseTrain.n}, GradNet on ${gnTrain.n}, tested on ${test.n} images; ladder ${
      targets.join(", ")
    }`,
  );

  // base network and its ladder of snapshots
  const base = cnnCifar(cfg.h, {
    inputShape: viewShape(train, policy, cfg.crop),
    classes: train.numClasses,
    seed: cfg.seed,
  });
  console.error(`base network cnn_cifar(${cfg.h}): ${countParams(base)} parameters`);
  const { rungs } = await trainBaseLadder(run, base, baseTrain, test, {
    seed: cfg.seed,
    lr: cfg.baseLr,
    weightDecay: cfg.baseWeightDecay,
    batch: cfg.baseBatch,
    halveEvery: cfg.baseHalveEvery,
    maxEpochs: cfg.baseMaxEpochs,
    evalEvery: cfg.baseEvalEvery,
    targets,
    policy,
    crop: cfg.crop,
  });
  const sorted = [...targets].sort((a, b) => a - b);
  const reached: Rung[] = sorted.map((t) => rungs.find((r) => r.target === t)).filter((
    r,
  ): r is Rung => !!r);
  if (!reached.length) {
    throw new UserError(
      `the base network reached none of the rungs ${
        targets.join(", ")
      } in ${cfg.baseMaxEpochs} epochs`,
    );
  }
  const missed = sorted.filter((t) => !rungs.some((r) => r.target === t));
  if (missed.length) {
    console.error(`rungs not reached in ${cfg.baseMaxEpochs} epochs: ${missed.join(", ")}`);
  }
  const data = { gnTrain, test, testIdx };

  if (cfg.study !== "none") {
    const r = cfg.studyRung >= 0
      ? Math.min(cfg.studyRung, reached.length - 1)
      : Math.floor((reached.length - 1) / 2);
    const rung = reached[r];
    const k = sorted.indexOf(rung.target);
    await loadSnapshot(run, k, base);
    const baseAcc = await accuracy(base, test, testIdx, { policy, crop: cfg.crop });
    const series: Series[] = [];
    const results: Record<string, number> = {};
    for (const s of studySettings(cfg, cfg.study)) {
      const file = `study-${cfg.study}-${s.name}.json`;
      let res: { acc: number; curve: { step: number; acc: number }[] };
      try {
        res = JSON.parse(await Deno.readTextFile(run.file(file)));
      } catch {
        await loadSnapshot(run, k, base);
        res = await runSetting(run, cfg, base, data, s, `rung${k}`);
        await run.writeJson(file, res);
      }
      results[s.name] = res.acc;
      series.push({
        name: `${s.name} (test ${res.acc.toFixed(4)})`,
        x: res.curve.map((c) => c.step),
        y: res.curve.map((c) => c.acc),
      });
    }
    await writeCurves(run, `study-${cfg.study}`, series, {
      title: `GradNet ${cfg.study} comparison — ${cfg.dataset}, base accuracy ${
        baseAcc.toFixed(4)
      }`,
      xTitle: "GradNet iterations",
      yTitle: `test accuracy (${cfg.curveTestImages} images)`,
    });
    const summary = {
      study: cfg.study,
      rung: r + 1,
      base_acc: baseAcc,
      final_test_acc: results,
      seconds: (performance.now() - t0) / 1000,
    };
    await run.complete(summary);
    if (!o.quiet) console.log(JSON.stringify(summary, null, 2));
    return {
      run,
      table: [],
      curves: series,
      title: `study ${cfg.study}`,
      study: { name: cfg.study, baseAcc, results, curves: series },
    };
  }

  // one GradNet per rung
  const table: RungResult[] = [];
  const curves: Series[] = [];
  for (const rung of reached) {
    const k = sorted.indexOf(rung.target);
    const file = `rung-${k}.json`;
    let row: RungResult;
    let curve: { step: number; acc: number }[] = [];
    try {
      ({ row, curve } = JSON.parse(await Deno.readTextFile(run.file(file))));
    } catch {
      const t = performance.now();
      const meta = await loadSnapshot(run, k, base);
      const baseAcc = await accuracy(base, test, testIdx, { policy, crop: cfg.crop });
      console.error(`rung ${k + 1} (≥${rung.target}): base test accuracy ${baseAcc.toFixed(4)}`);
      const res = await runSetting(run, cfg, base, data, settingOf(cfg, "main"), `rung${k}`);
      curve = res.curve;
      row = {
        rung: k + 1,
        target: rung.target,
        base_acc: baseAcc,
        gradnet_acc: res.acc,
        gain: res.acc / baseAcc - 1,
        test_rule: cfg.testRule === "true-label"
          ? "true-label (leaks the label: upper bound)"
          : cfg.testRule,
        test_images: test.n,
        seconds: (performance.now() - t) / 1000,
        base_step: Number(meta.step),
      };
      await run.writeJson(file, { row, curve });
      console.error(`rung ${k + 1}: base ${baseAcc.toFixed(4)} → GradNet ${res.acc.toFixed(4)}`);
    }
    table.push(row);
    curves.push({
      name: `rung ${k + 1} (base ${row.base_acc.toFixed(3)})`,
      x: curve.map((c) => c.step),
      y: curve.map((c) => c.acc),
    });
  }
  const title =
    `GradNet on ${cfg.dataset} — cnn_cifar(${cfg.h}), ${cfg.structure}, ${cfg.epochs} epochs`;
  const md = await writeTable(run, table, title);
  await writeCurves(run, "gradnet-curves", curves, {
    title: `GradNet learning curves — ${cfg.dataset}`,
    xTitle: "GradNet iterations",
    yTitle: `test accuracy (${cfg.curveTestImages} images)`,
  });
  const seconds = (performance.now() - t0) / 1000;
  await run.complete({ table, seconds, missed_rungs: missed });
  if (!o.quiet) console.log(md + `\nwall time ${seconds.toFixed(0)} s — ${run.path}`);
  return { run, table, curves, title };
}

if (import.meta.main) await runCli(SPEC, (cfg) => main(cfg));
export { SPEC as GRADNET_SPEC, tableMarkdown };
