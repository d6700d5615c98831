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

import { COMMON_KEYS, runCli } from "../lib/config/cli.ts";
import { declareConfig, key } from "../lib/config/declare.ts";
import type { RunDir } from "../lib/run/run_dir.ts";
import { startRun } from "../lib/run/start.ts";
import { storedExperiment } from "../lib/lastlayer/study.ts";
import {
  metricFigures,
  regionFigures,
  summaryMarkdown,
  type SummaryRow,
  summaryTableFigure,
} from "../lib/lastlayer/report.ts";
import { type ExperimentCurves, lastLayerCurvesSvg } from "../lib/lastlayer/figures.ts";
import type { Figure } from "../lib/plot/figures.ts";
import { writeFiguresHtml } from "../lib/plot/html.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const EXPERIMENTS = ["A-blobs", "A-band", "A-annuli", "A-moons", "B", "C", "D", "E"] as const;

const CONFIG = declareConfig({
  ...COMMON_KEYS,
  out: key("results", "folder under which results/lastlayer/<run>/ is written"),
  experiments: key(
    ["A-blobs", "A-band", "A-annuli", "B", "C", "D"] as string[],
    "A-blobs, A-band, A-annuli, A-moons (2-D, x² net), B (three blobs), C (MNIST 0/1), D (MNIST 0/1/2), E (CIFAR airplane/bird)",
    { choices: EXPERIMENTS },
  ),
  hidden: key(256, "hidden width of the 2-D networks (the original: 2000)", { int: true, min: 1 }),
  simSteps: key(20000, "gradient-descent steps of experiments A (the original: 100,001)", {
    int: true,
    min: 1,
  }),
  simLr: key(0.5, "learning rate of experiments A (the original: 1e-4 on its unscaled inputs)", {
    min: 0,
    minOpen: true,
  }),
  simClip: key(
    1,
    "clip the gradient norm of experiments A (x² networks diverge otherwise; 0: off)",
    { min: 0 },
  ),
  blobSteps: key(40000, "gradient-descent steps of experiment B (the original: 40,000)", {
    int: true,
    min: 1,
  }),
  blobPoints: key(5000, "points of experiment B (the original: 5,000)", { int: true, min: 2 }),
  blobLr: key(1e-3, "learning rate of experiment B (the original: 1e-4)", {
    min: 0,
    minOpen: true,
  }),
  blobMomentum: key(
    0.9,
    "heavy-ball momentum of experiment B's gradient descent (the original: 0)",
    { min: 0, max: 1, maxOpen: true },
  ),
  imageSteps: key(10000, "momentum-SGD steps of experiments C–E", { int: true, min: 1 }),
  imageLr: key(0.01, "learning rate of experiments C–E", { min: 0, minOpen: true }),
  imageBatch: key(256, "batch size of experiments C–E", { int: true, min: 0 }),
  momentum: key(0.9, "momentum of experiments C–E", { min: 0, max: 1, maxOpen: true }),
  imageTrain: key(0, "use the first N training images of the classes (0: all)", {
    int: true,
    min: 0,
  }),
  evalPoints: key(20, "how many times along training the SVM is fitted and compared", {
    int: true,
    min: 1,
  }),
  reinitSteps: key(20000, "gradient-descent steps of the re-init arm (last layer alone)", {
    int: true,
    min: 1,
  }),
  reinitLr: key(0.1, "learning rate of the re-init arm", { min: 0, minOpen: true }),
  svmC: key(
    1e6,
    "slack penalty of the reference max-margin SVM (1e6: the hard margin on separable φ, the theory's reference; the original used C = 1)",
    { min: 0, minOpen: true },
  ),
  targetLoss: key(
    1e-3,
    "stop an arm once its cross-entropy on the whole training set is below this (0: run every step)",
    { min: 0 },
  ),
});

export const DEFAULTS = CONFIG.defaults;

export type LastLayerConfig = typeof DEFAULTS;

const SPEC = {
  description:
    "lastlayer — is the last weight layer a linear SVM on the last hidden layer? (angles, offsets, agreement)",
  usage:
    "deno task lastlayer [--experiments=A-blobs,B,C] [--preset=smoke|default|paper] [--key=value ...]",
  ...CONFIG,
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
    const saved = await storedExperiment(run, id, cfg, o.quiet);
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
    summaryTableFigure(summary),
    "last layer vs SVM",
  );
  const seconds = run.elapsed();
  await run.complete({ summary, seconds });
  if (!o.quiet) console.log(md + `\nwall time ${seconds.toFixed(0)} s — ${run.path}`);
  return { run, summary, figures };
}

if (import.meta.main) await runCli(SPEC, (cfg) => main(cfg));
export { SPEC as LASTLAYER_SPEC, summaryMarkdown };
