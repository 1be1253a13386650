// Tasks, datasets, metrics and the evaluator core. The public API of @hm3/evaluation.
export {
  METRICS,
  isMetric,
  checkMetric,
  parseTaskSpec,
  validateTaskSpec,
  templateFields,
  renderPrompt,
  toExamples,
  zooTaskSpec,
  zooDatasetRef,
  type Metric,
  type TaskSpec,
  type Example,
} from './task-spec.js';
export {
  parseJsonl,
  loadDatasetSplit,
  registerDataset,
  datasetDigest,
  datasetArtifactId,
  seededPermutation,
  splitRows,
  sha256Hex,
  ARTIFACT_SCHEME,
  DATASET_FILE,
  DEFAULT_SEARCH_FRACTION,
  type DatasetRef,
  type DatasetLocation,
  type DatasetRow,
  type LoadedSplit,
  type SplitOptions,
} from './dataset.js';
export { chrf, topTwo, CHRF_ORDER, CHRF_BETA } from './metrics.js';
export {
  evaluateTask,
  loadTaskExamples,
  findEosTokenId,
  DEFAULT_EVAL_BATCH_SIZE,
  GENERATION_SLACK,
  type EvaluateTaskInput,
  type EvaluationResult,
  type EvaluationProgress,
  type ExampleRecord,
} from './evaluator.js';
export {
  InvalidTaskSpecError,
  UnknownMetricError,
  InvalidDatasetError,
  EmptyDatasetError,
  DatasetNotFoundError,
  DatasetDigestMismatchError,
  EvaluationCancelledError,
} from './errors.js';
export {
  BUILTIN_TASKS,
  findTask,
  objectiveTaskSpec,
  zooDataset,
  ZOO_SCHEME,
  type TaskDefinition,
  type ObjectiveSpec,
} from './task-catalog.js';
