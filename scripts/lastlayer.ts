/**
 * Last layer = SVM — "On the Decision Boundary of Deep Neural Networks" (Li, Ding, Gao,
 * arXiv 1808.05385; spec: shared/papers/lastlayer_svm.md; code: liyu95/NN_decision_boundary).
 *
 *   deno task lastlayer                                  # experiments A–D (no download)
 *   deno task lastlayer --experiments=E --data-dir=DIR   # CIFAR-10 airplane vs bird
 *   deno task lastlayer --preset=smoke                   # seconds
 *
 * Each network has a 2-D feature layer φ before its last weight layer. While it trains towards
 * zero cross-entropy (until it is below --target-loss, or the step budget ends), the theory's
 * reference — the max-margin linear classifier with free biases on the training features, i.e.
 * the (multiclass) hard-margin SVM when φ is separable — is fitted every few steps and compared
 * with the last layer: the angle between their directions, the signed offset of the network's
 * boundary from the SVM's in units of the SVM's margin (0: on it, ±1: on a margin hyperplane), per
 * class pair, and their agreement on a grid. Then φ is frozen, the last layer re-initialised and
 * trained alone (the re-init arm).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  COMMON_CHOICES,
  COMMON_DEFAULTS,
  COMMON_DOCS,
  COMMON_RANGES,
  runCli,
} from "../lib/config/cli.ts";
import { RunDir } from "../lib/run/run_dir.ts";
import { startRun } from "../lib/run/start.ts";
import { band, gaussianBlobs, moons, type PointSet, quarterAnnuli } from "../lib/data/synthetic.ts";
import { loadMnist } from "../lib/data/mnist.ts";
import { loadCifar10 } from "../lib/data/cifar.ts";
import { classSubset } from "../lib/data/splits.ts";
import { imageBatch, type ImageDataset } from "../lib/data/dataset.ts";
import { cnnNet, mlpNet, type TwoDNet } from "../lib/lastlayer/networks.ts";
import {
  type ArmSnapshot,
  type ExperimentData,
  type MetricRow,
  runExperiment,
} from "../lib/lastlayer/experiment.ts";
import { boundingBox, regionGrid } from "../lib/lastlayer/geometry.ts";
import { type ExperimentCurves, lastLayerCurvesSvg } from "../lib/lastlayer/figures.ts";
import { decisionRegionFigure, type Figure, lineFigure, tableFigure } from "../lib/plot/figures.ts";
import { writeFiguresHtml } from "../lib/plot/html.ts";
import { UserError } from "../lib/util/errors.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const EXPERIMENTS = ["A-blobs", "A-band", "A-annuli", "A-moons", "B", "C", "D", "E"] as const;

export const DEFAULTS = {
  ...COMMON_DEFAULTS,
  resume: "",
  threads: 0,
  experiments: ["A-blobs", "A-band", "A-annuli", "B", "C", "D"] as string[],
  hidden: 256,
  simSteps: 20000,
  simLr: 0.5,
  simClip: 1,
  blobSteps: 40000,
  blobPoints: 5000,
  blobLr: 1e-3,
  blobMomentum: 0.9,
  imageSteps: 10000,
  imageLr: 0.01,
  imageBatch: 256,
  momentum: 0.9,
  imageTrain: 0,
  evalPoints: 20,
  reinitSteps: 20000,
  reinitLr: 0.1,
  svmC: 1e6,
  targetLoss: 1e-3,
};

export type LastLayerConfig = typeof DEFAULTS;

const DOCS: Record<keyof LastLayerConfig, string> = {
  ...COMMON_DOCS,
  out: "folder under which results/lastlayer/<run>/ is written",
  resume: "continue the run in this folder",
  threads: "compute threads for the native backend (0: all cores)",
  experiments:
    "A-blobs, A-band, A-annuli, A-moons (2-D, x² net), B (three blobs), C (MNIST 0/1), D (MNIST 0/1/2), E (CIFAR airplane/bird)",
  hidden: "hidden width of the 2-D networks (the original: 2000)",
  simSteps: "gradient-descent steps of experiments A (the original: 100,001)",
  simLr: "learning rate of experiments A (the original: 1e-4 on its unscaled inputs)",
  simClip: "clip the gradient norm of experiments A (x² networks diverge otherwise; 0: off)",
  blobSteps: "gradient-descent steps of experiment B (the original: 40,000)",
  blobPoints: "points of experiment B (the original: 5,000)",
  blobLr: "learning rate of experiment B (the original: 1e-4)",
  blobMomentum: "heavy-ball momentum of experiment B's gradient descent (the original: 0)",
  imageSteps: "momentum-SGD steps of experiments C–E",
  imageLr: "learning rate of experiments C–E",
  imageBatch: "batch size of experiments C–E",
  momentum: "momentum of experiments C–E",
  imageTrain: "use the first N training images of the classes (0: all)",
  evalPoints: "how many times along training the SVM is fitted and compared",
  reinitSteps: "gradient-descent steps of the re-init arm (last layer alone)",
  reinitLr: "learning rate of the re-init arm",
  svmC:
    "slack penalty of the reference max-margin SVM (1e6: the hard margin on separable φ, the theory's reference; the original used C = 1)",
  targetLoss:
    "stop an arm once its cross-entropy on the whole training set is below this (0: run every step)",
};

const SPEC = {
  description:
    "lastlayer — is the last weight layer a linear SVM on the last hidden layer? (angles, offsets, agreement)",
  usage:
    "deno task lastlayer [--experiments=A-blobs,B,C] [--preset=smoke|default|paper] [--key=value ...]",
  defaults: DEFAULTS,
  docs: DOCS,
  choices: { backend: COMMON_CHOICES.backend, experiments: EXPERIMENTS },
  ranges: {
    ...COMMON_RANGES,
    hidden: { min: 1 },
    simSteps: { min: 1 },
    simLr: { min: 0, minOpen: true },
    simClip: { min: 0 },
    blobSteps: { min: 1 },
    blobPoints: { min: 2 },
    blobLr: { min: 0, minOpen: true },
    blobMomentum: { min: 0, max: 1, maxOpen: true },
    imageSteps: { min: 1 },
    imageLr: { min: 0, minOpen: true },
    imageBatch: { min: 0 },
    momentum: { min: 0, max: 1, maxOpen: true },
    imageTrain: { min: 0 },
    evalPoints: { min: 1 },
    reinitSteps: { min: 1 },
    reinitLr: { min: 0, minOpen: true },
    svmC: { min: 0, minOpen: true },
    targetLoss: { min: 0 },
  },
  integers: [
    "seed",
    "threads",
    "hidden",
    "simSteps",
    "blobSteps",
    "blobPoints",
    "imageSteps",
    "imageBatch",
    "imageTrain",
    "evalPoints",
    "reinitSteps",
  ] as const,
  presets: {
    smoke: {
      experiments: ["A-blobs", "B", "C"],
      hidden: 16,
      simSteps: 60,
      blobSteps: 60,
      blobPoints: 300,
      imageSteps: 12,
      imageTrain: 300,
      imageBatch: 64,
      evalPoints: 3,
      reinitSteps: 60,
    },
    default: {},
    paper: {
      hidden: 2000,
      simSteps: 100001,
      blobSteps: 40000,
      imageSteps: 20000,
      reinitSteps: 100000,
    },
  } as Record<string, Partial<LastLayerConfig>>,
  presetDocs: {
    smoke: "seconds: tiny networks and few steps (tests)",
    default: "CPU sizes, experiments A–D, minutes",
    paper: "the original widths and step counts (hours)",
  },
};

// ---------------------------------------------------------------------------------------------
// Data and networks

function pointData(p: PointSet, classes: number): ExperimentData {
  return {
    x: tf.tensor2d(p.x, [p.n, p.d]),
    y: p.y,
    classes,
    classNames: Array.from({ length: classes }, (_, k) => `class ${k}`),
  };
}

function imageData(train: ImageDataset, test: ImageDataset, limit: number): ExperimentData {
  const n = limit > 0 ? Math.min(limit, train.n) : train.n;
  const idx = Array.from({ length: n }, (_, i) => i);
  return {
    x: imageBatch(train, idx),
    y: train.labels.slice(0, n),
    xTest: imageBatch(test, Array.from({ length: test.n }, (_, i) => i)),
    yTest: test.labels.slice(),
    classes: train.numClasses,
    classNames: train.classNames,
  };
}

interface Setup {
  title: string;
  data: ExperimentData;
  net: TwoDNet;
  steps: number;
  lr: number;
  batch: number;
  momentum: number;
  clip: number;
}

async function setup(id: string, cfg: LastLayerConfig): Promise<Setup> {
  const sim = (title: string, p: PointSet): Setup => ({
    title,
    data: pointData(p, 2),
    net: mlpNet({
      hidden: cfg.hidden,
      classes: 2,
      activation: "square",
      initStd: 0.01,
      biasInit: 0.1,
      seed: cfg.seed,
    }),
    steps: cfg.simSteps,
    lr: cfg.simLr,
    batch: 0,
    momentum: 0,
    clip: cfg.simClip,
  });
  switch (id) {
    case "A-blobs":
      return sim(
        "A: two blobs (x² network)",
        gaussianBlobs({
          centers: [[0.2, 0.2], [0.8, 0.8]],
          sigma: 0.1,
          counts: 1000,
          seed: cfg.seed,
        }),
      );
    case "A-band":
      return sim("A: square minus a band (x² network)", band({ n: 2000, seed: cfg.seed }));
    case "A-annuli": {
      // The original's radii [0.1, 200] and [300, 400], scaled by 1/400 (x² activations on raw radii overflow).
      const q = quarterAnnuli({ seed: cfg.seed });
      return sim("A: quarter annuli (x² network)", { ...q, x: q.x.map((v) => v / 400) });
    }
    case "A-moons":
      return sim("A: moons (x² network)", moons({ n: 2000, noise: 0.1, seed: cfg.seed }));
    case "B": {
      const k = Math.floor(cfg.blobPoints / 3);
      const b = gaussianBlobs({
        centers: [[10, 10], [45, 75], [80, 10]],
        sigma: 5,
        counts: [k, k, cfg.blobPoints - 2 * k],
        seed: cfg.seed,
      });
      return {
        title: "B: three blobs (ReLU network)",
        data: pointData(b, 3),
        net: mlpNet({
          hidden: cfg.hidden,
          classes: 3,
          activation: "relu",
          initStd: 0.05,
          biasInit: 0.01,
          seed: cfg.seed,
        }),
        steps: cfg.blobSteps,
        lr: cfg.blobLr,
        batch: 0,
        momentum: cfg.blobMomentum,
        clip: 0,
      };
    }
    case "C":
    case "D": {
      const { train, test } = await loadMnist();
      const classes = id === "C" ? [0, 1] : [0, 1, 2];
      const data = imageData(
        classSubset(train, classes),
        classSubset(test, classes),
        cfg.imageTrain,
      );
      return {
        title: id === "C" ? "C: MNIST 0 vs 1 (CNN)" : "D: MNIST 0/1/2 (CNN)",
        data,
        net: cnnNet({ inputShape: [28, 28, 1], classes: classes.length, seed: cfg.seed }),
        steps: cfg.imageSteps,
        lr: cfg.imageLr,
        batch: cfg.imageBatch,
        momentum: cfg.momentum,
        clip: 0,
      };
    }
    case "E": {
      const { train, test } = await loadCifar10({ dataDir: cfg.dataDir || undefined });
      const data = imageData(classSubset(train, [0, 2]), classSubset(test, [0, 2]), cfg.imageTrain);
      return {
        title: "E: CIFAR-10 airplane vs bird (CNN)",
        data,
        net: cnnNet({ inputShape: [32, 32, 3], classes: 2, seed: cfg.seed }),
        steps: cfg.imageSteps,
        lr: cfg.imageLr,
        batch: cfg.imageBatch,
        momentum: cfg.momentum,
        clip: 0,
      };
    }
  }
  throw new UserError(`unknown experiment ${id}`);
}

// ---------------------------------------------------------------------------------------------
// Reports

/** Decision regions of the network's last layer and of the SVM, in φ-space, side by side. */
export function regionFigures(title: string, s: ArmSnapshot): Figure[] {
  const box = boundingBox(s.phi, 0.15);
  const cap = Math.min(s.labels.length, 3000);
  const step = s.labels.length / cap;
  const idx = Array.from({ length: cap }, (_, k) => Math.floor(k * step));
  const points = {
    x: idx.map((i) => s.phi[2 * i]),
    y: idx.map((i) => s.phi[2 * i + 1]),
    label: idx.map((i) => s.labels[i]),
  };
  return [["network's last layer", s.nn], ["SVM", s.svm]].map(([name, m]) => {
    const g = regionGrid(m as ArmSnapshot["nn"], box);
    return decisionRegionFigure({ title: `${title} — ${name}`, ...g, points });
  });
}

/** Angle and offsets along training. */
export function metricFigures(title: string, rows: MetricRow[]): Figure[] {
  const series = (phase: MetricRow["phase"], key: keyof MetricRow, name: string) => {
    const r = rows.filter((x) => x.phase === phase);
    return { name, x: r.map((x) => x.step), y: r.map((x) => x[key] as number) };
  };
  // against log(step): the theory has the direction converge like 1/log t
  return (["train", "reinit"] as const).map((phase) =>
    lineFigure([
      series(phase, "angle_deg", "angle NN vs SVM (°)"),
      { ...series(phase, "offset_nn_svm", "offset NN − SVM (SVM margins)"), dash: "dot" },
      { ...series(phase, "agreement", "grid agreement"), dash: "dashdot" },
    ], {
      title: `${title} — ${phase === "train" ? "whole network trained" : "re-init arm (φ frozen)"}`,
      xTitle: "step (log scale)",
      yTitle: "value",
      logX: true,
    })
  );
}

/** One summary row per experiment and arm. */
export interface SummaryRow {
  experiment: string;
  arm: string;
  steps: number;
  /** cross-entropy on the whole training set at the last evaluation */
  train_ce: number;
  test_acc: number | null;
  angle_deg: number;
  /** signed, in SVM margins (multi-class: mean over pairs) */
  offset_nn_svm: number;
  offset_max_abs: number;
  /** φ separable at the end: the reference is the hard-margin SVM */
  separable: boolean;
  agreement: number;
  seconds: number;
}

function summaryMarkdown(rows: SummaryRow[]): string {
  const f = (v: number | null, d = 4) => (v === null || Number.isNaN(v) ? "—" : v.toFixed(d));
  return [
    "| experiment | arm | steps | final train CE | test acc | angle (°) | offset NN − SVM (margins) | max \\|offset\\| | φ separable | agreement | s |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ...rows.map((r) =>
      `| ${r.experiment} | ${r.arm} | ${r.steps} | ${r.train_ce.toExponential(2)} | ${
        f(r.test_acc)
      } | ${f(r.angle_deg, 2)} | ` +
      `${f(r.offset_nn_svm, 3)} | ${f(r.offset_max_abs, 3)} | ${r.separable ? "yes" : "no"} | ${
        f(r.agreement)
      } | ${r.seconds.toFixed(0)} |`
    ),
  ].join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// Main

/** What a run returns. */
export interface LastLayerResult {
  run: RunDir;
  summary: SummaryRow[];
  figures: Record<string, Figure[]>;
}

export async function main(
  cfgIn: LastLayerConfig,
  o: { quiet?: boolean } = {},
): Promise<LastLayerResult> {
  const { run, cfg } = await startRun("lastlayer", cfgIn, DEFAULTS as LastLayerConfig);
  const summary: SummaryRow[] = [];
  const figures: Record<string, Figure[]> = {};
  const curves: ExperimentCurves[] = [];
  for (const id of cfg.experiments) {
    const file = `experiment-${id}.json`;
    let saved: {
      rows: MetricRow[];
      summary: SummaryRow[];
      title: string;
      train: ArmSnapshot;
      reinit: ArmSnapshot;
    } | null = null;
    try {
      saved = JSON.parse(
        await Deno.readTextFile(run.file(file)),
        (k, v) => (k === "phi" ? Float32Array.from(v) : k === "labels" ? Int32Array.from(v) : v),
      );
    } catch { /* not done yet */ }
    if (!saved) {
      const t = performance.now();
      const su = await setup(id, cfg);
      console.error(`${su.title}: ${su.data.y.length} training points, ${su.steps} steps`);
      const res = await runExperiment(run, id, su.net, su.data, {
        steps: su.steps,
        evalEvery: Math.max(1, Math.floor(su.steps / cfg.evalPoints)),
        lr: su.lr,
        momentum: su.momentum,
        batch: su.batch,
        reinitSteps: cfg.reinitSteps,
        reinitEvalEvery: Math.max(1, Math.floor(cfg.reinitSteps / cfg.evalPoints)),
        reinitLr: cfg.reinitLr,
        svmC: cfg.svmC,
        targetLoss: cfg.targetLoss,
        clipNorm: su.clip,
        seed: cfg.seed,
      });
      const last = (phase: MetricRow["phase"]) => res.rows.filter((r) => r.phase === phase).at(-1)!;
      const seconds = (performance.now() - t) / 1000;
      const rowOf = (phase: MetricRow["phase"], arm: string): SummaryRow => {
        const r = last(phase);
        return {
          experiment: id,
          arm,
          steps: r.step,
          train_ce: r.train_ce,
          test_acc: r.test_acc,
          angle_deg: r.angle_deg,
          offset_nn_svm: r.offset_nn_svm,
          offset_max_abs: r.offset_max_abs,
          separable: r.svm_separable === 1,
          agreement: r.agreement,
          seconds,
        };
      };
      saved = {
        rows: res.rows,
        title: su.title,
        train: res.train,
        reinit: res.reinit,
        summary: [
          rowOf("train", "whole network"),
          rowOf("reinit", "re-init last layer"),
        ],
      };
      tf.dispose([su.data.x, ...(su.data.xTest ? [su.data.xTest] : []), ...su.net.variables()]);
      await run.writeJson(file, {
        ...saved,
        train: {
          ...saved.train,
          phi: Array.from(saved.train.phi),
          labels: Array.from(saved.train.labels),
        },
        reinit: {
          ...saved.reinit,
          phi: Array.from(saved.reinit.phi),
          labels: Array.from(saved.reinit.labels),
        },
      });
      await run.writeMetrics(
        res.rows as unknown as Record<string, number | string | null>[],
        `${id}-metrics.csv`,
      );
      const f = [
        ...regionFigures(`${su.title}, trained`, res.train),
        ...regionFigures(`${su.title}, re-init arm`, res.reinit),
        ...metricFigures(su.title, res.rows),
      ];
      await writeFiguresHtml(run.file(`${id}.html`), f, su.title);
      if (!o.quiet) {
        for (const r of saved.summary) {
          console.error(
            `  ${r.arm}: ${r.steps} steps, train CE ${r.train_ce.toExponential(2)}, angle ${
              r.angle_deg.toFixed(2)
            }°, offset ${r.offset_nn_svm.toFixed(3)} margins, agreement ${r.agreement.toFixed(4)}`,
          );
        }
      }
    }
    summary.push(...saved.summary);
    curves.push({ id, rows: saved.rows });
    figures[id] = [
      ...regionFigures(`${saved.title}, trained`, saved.train),
      ...regionFigures(`${saved.title}, re-init arm`, saved.reinit),
      ...metricFigures(saved.title, saved.rows),
    ];
  }
  const md = summaryMarkdown(summary);
  const svg = lastLayerCurvesSvg(curves);
  await run.writeText("angles.svg", svg.angles);
  await run.writeText("offsets.svg", svg.offsets);
  await run.writeJson("summary-table.json", summary);
  await run.writeText("summary.md", md);
  await writeFiguresHtml(
    run.file("summary.html"),
    tableFigure(
      [
        "experiment",
        "arm",
        "steps",
        "final train CE",
        "test acc",
        "angle °",
        "offset (margins)",
        "max |offset|",
        "agreement",
      ],
      summary.map((
        r,
      ) => [
        r.experiment,
        r.arm,
        r.steps,
        r.train_ce,
        r.test_acc ?? NaN,
        r.angle_deg,
        r.offset_nn_svm,
        r.offset_max_abs,
        r.agreement,
      ]),
      "last layer vs SVM",
    ),
    "last layer vs SVM",
  );
  const seconds = run.elapsed();
  await run.complete({ summary, seconds });
  if (!o.quiet) console.log(md + `\nwall time ${seconds.toFixed(0)} s — ${run.path}`);
  return { run, summary, figures };
}

if (import.meta.main) await runCli(SPEC, (cfg) => main(cfg));
export { SPEC as LASTLAYER_SPEC, summaryMarkdown };
