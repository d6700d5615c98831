/**
 * gradlab — reproduce, run and extend four papers about what lives inside trained networks,
 * in Deno + TensorFlow.js. This module is the public API; the scripts in `scripts/` and the
 * notebooks in `notebooks/` are built from it.
 *
 * @module
 */

// Backends
export {
  BACKEND_CHOICES,
  type BackendChoice,
  type BackendInfo,
  BackendUnavailableError,
  currentBackend,
  initBackend,
  probeWebGpu,
} from "./lib/backend/select.ts";

// Configuration and command line
export { ConfigError, type ConfigSpec, helpText, parseConfig } from "./lib/config/parse.ts";
export { runCli } from "./lib/config/cli.ts";

// Data
export {
  classCounts,
  DataError,
  type DatasetSplit,
  imageBatch,
  type ImageDataset,
  labelBatch,
  subset,
} from "./lib/data/dataset.ts";
export { FASHION_CLASSES, loadFashionMnist, loadMnist } from "./lib/data/mnist.ts";
export { CIFAR10_CLASSES, loadCifar10, loadCifar100 } from "./lib/data/cifar.ts";
export { type LocateOptions } from "./lib/data/locate.ts";
export {
  band,
  gaussianBlobs,
  moons,
  type PointSet,
  quarterAnnuli,
  syntheticImages,
} from "./lib/data/synthetic.ts";
export {
  classSubset,
  halves,
  holdOut,
  type PairTask,
  pairTaskDataset,
  pairTasks,
  stratifiedSample,
  twinOf,
} from "./lib/data/splits.ts";
export {
  augmentTensor,
  centerCrop,
  cyclicShift,
  fromTensor,
  type HostBatch,
  normalizeChannels,
  perImageStandardize,
  randomContrast,
  randomCrop,
  randomFlip,
  toTensor,
} from "./lib/data/augment.ts";

// Training
export {
  Adam,
  makeOptimizer,
  Optimizer,
  type OptimizerConfig,
  RmsProp,
  Sgd,
} from "./lib/train/optimizers.ts";
export { lrAt, type Schedule } from "./lib/train/schedule.ts";
export {
  type Callback,
  DivergenceError,
  epochOrder,
  type EpochRecord,
  fit,
  type FitOptions,
  type TrainState,
} from "./lib/train/fit.ts";
export { earlyStopping, ladderCallback, type Rung } from "./lib/train/callbacks.ts";
export { trainInRun } from "./lib/train/session.ts";

// Runs and plots
export { RunDir } from "./lib/run/run_dir.ts";
export { loadModel, saveModel } from "./lib/run/model_io.ts";
export {
  barFigure,
  decisionRegionFigure,
  type Figure,
  imageGridFigure,
  lineFigure,
  type Series,
  tableFigure,
} from "./lib/plot/figures.ts";
export { figuresHtml, writeFiguresHtml } from "./lib/plot/html.ts";
export { markdown, show } from "./lib/plot/notebook.ts";

// Layers and models
export {
  gunnLayer,
  type GunnLayerArgs,
  gunnLayerParamCount,
  gunnUnit,
  gunnUpdate,
  type UpdateMode,
} from "./lib/layers/gunn.ts";
export { batchNormTrain } from "./lib/layers/batch_norm.ts";
export {
  replaceBlock,
  type ReplaceBlockParams,
  replaceBlockStock,
} from "./lib/layers/gunn_block.ts";
export {
  GUNN15,
  type GunnArchitecture,
  gunnNetwork,
  gunnParamCount,
  MINI_GUNN,
} from "./lib/models/gunn.ts";
export {
  channelStats,
  CIFAR_MEAN,
  CIFAR_STD,
  downsample,
  gunnTestBatch,
  gunnTrainBatch,
  type GunnView,
} from "./lib/gunn/data.ts";
export { type ArmResult, trainGunnArm } from "./lib/gunn/train.ts";

export {
  binaryLoss,
  classifierLogits,
  classifierSpec,
  Generator,
  initClassifierWeights,
  specSize,
  type TensorSpec,
} from "./lib/supernet/networks.ts";
export { pairTaskSet, type Task, taskLabel, versusLastTaskSet } from "./lib/supernet/tasks.ts";
export {
  adaptArm,
  type Arm,
  type ArmOutcome,
  ARMS,
  oneHotZ,
  taskBatch,
  trainGenerator,
} from "./lib/supernet/train.ts";

// Utilities
export { Rng, type RngState, tfSeed } from "./lib/util/rng.ts";
export { UserError } from "./lib/util/errors.ts";

// GradNet: cached sparse features, sparse training, the experiment on one base snapshot
export { batchRows, FeatureCache, type RowBatch, type SparseRow } from "./lib/gradnet/cache.ts";
export { type FeatureRows, FileFeatureCache, freeDiskBytes } from "./lib/gradnet/file_cache.ts";
export { SparseGradNet } from "./lib/gradnet/sparse.ts";
export { Featurizer } from "./lib/gradnet/features.ts";
export {
  augmentedRows,
  cachedRows,
  prefetchedRows,
  sumRuleAccuracy,
  trainGradNetSparse,
  type TrainRows,
} from "./lib/gradnet/train.ts";
export { gradNetOnSnapshot, type Setting } from "./lib/gradnet/experiment.ts";
export { lineChartSvg } from "./lib/plot/svg.ts";
export { variableFrom } from "./lib/util/tensors.ts";

// Per-example gradients, sparsification and normalisation (GradNet's features)
export {
  type ActivationName,
  netFromModel,
  type NetOp,
  UnsupportedModelError,
} from "./lib/gradients/network.ts";
export {
  allLabelGradients,
  type GradientLayout,
  gradientLayout,
  gradientStream,
  labelGradientBlocks,
  type LayoutBlock,
  perExampleGradients,
  type PerExampleOptions,
} from "./lib/gradients/per_example.ts";
export { percentile, sparsifyRows } from "./lib/gradients/sparsify.ts";
export {
  type CoordinateStats,
  type Normalization,
  NORMALIZATIONS,
  normalizeEntries,
  type NormalizeOptions,
  normalizeRows,
  RunningStats,
  scaleStep,
} from "./lib/gradients/normalize.ts";

// Linear SVMs
export {
  type BiasMode,
  type BinarySvm,
  type BinarySvmOptions,
  decisionFunction,
  fitBinarySvm,
  type SvmLoss,
  SvmNotConvergedError,
} from "./lib/svm/binary.ts";
export {
  type CrammerSingerOptions,
  fitCrammerSinger,
  fitOneVsRest,
  type MulticlassSvm,
  predictMulticlass,
} from "./lib/svm/multiclass.ts";
export {
  fitMaxMarginMulticlass,
  type MaxMarginFit,
  type MaxMarginOptions,
} from "./lib/svm/max_margin.ts";

// Last layer = SVM: the metrics
export {
  angleDeg,
  binaryOf,
  closestPair,
  gridAgreement,
  type Linear2,
  marginOffset,
} from "./lib/lastlayer/geometry.ts";
export {
  compare,
  crossEntropy,
  type FeatureSvm,
  fitFeatureSvm,
} from "./lib/lastlayer/experiment.ts";

// TensorFlow.js types, under this project's names (lib/util/tf_types.ts)
export type {
  Layer,
  LayersModel,
  LayerVariable,
  Scalar,
  Sequential,
  Shape,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
} from "./lib/util/tf_types.ts";

// Types the signatures above use
export type { ConfigValue, ParseResult, Range } from "./lib/config/parse.ts";
export type { AutoTestHooks } from "./lib/backend/select.ts";
export type {
  BatchNormWeights,
  BatchStats,
  GunnUnitWeights,
  GunnUpdateOptions,
} from "./lib/layers/gunn.ts";
export type { GunnNetworkOptions } from "./lib/models/gunn.ts";
export type { GunnTrainOptions } from "./lib/gunn/train.ts";
export type {
  AdaptOptions,
  GeneratorTrainOptions,
  Scaling,
  SuperNetData,
  ValPoint,
  ZForm,
} from "./lib/supernet/train.ts";
export { Z_FORMS } from "./lib/supernet/train.ts";
export type { NamedArray } from "./lib/run/bundle.ts";
export type { GradNet, GradNetConfig } from "./lib/models/gradnet.ts";
export type { CachedSet, CachedTrainOptions, TestRule } from "./lib/gradnet/train.ts";
export type {
  CurvePoint,
  ExperimentData as GradNetExperimentData,
  ExperimentOptions,
  SettingResult,
} from "./lib/gradnet/experiment.ts";
export type { FeatureOptions } from "./lib/gradnet/features.ts";
export type { AugmentPolicy } from "./lib/gradnet/preprocess.ts";
export type { SessionOptions } from "./lib/train/session.ts";
export type { LossResult } from "./lib/train/fit.ts";
export type { OptimizerState } from "./lib/train/optimizers.ts";
export type { ExperimentData, MetricRow } from "./lib/lastlayer/experiment.ts";
