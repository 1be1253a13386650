// @hm3/merge: recipes (mergekit YAML and proto), the method registry and methods, architecture awareness.
export type {
  MergeMethod,
  MethodInput,
  MethodModel,
  ParamScalar,
  ParamSpec,
  ResolvedParams,
  TensorContext,
} from './method.js';
export {
  RecipeValidationError,
  UnknownMethodError,
  UnsupportedArchitectureError,
  MissingParameterError,
  type RecipeIssue,
} from './errors.js';
export {
  getMethod,
  hasMethod,
  listMethods,
  registerMethod,
  formatMethodList,
  closestName,
} from './registry.js';
export {
  parseRecipeYaml,
  recipeFromProto,
  validateRecipeDocument,
  computeDtype,
  modelKey,
  formatPath,
  methodNames,
  type Recipe,
  type RecipeModel,
  type ModelRef,
  type ParamSetting,
  type DType,
  type TokenizerSource,
  type TokenRowSource,
  type TokenOverride,
  type RecipeTokenizer,
  type RecipeSourceOptions,
} from './recipe.js';
export {
  gradientT,
  interpolateGradient,
  evaluateSetting,
  resolveTensorParameters,
  type TensorParameters,
  type TensorModelPlan,
} from './tensor-parameters.js';
export {
  architectureFromConfig,
  classifyTensor,
  isVocabularyTensor,
  expectedTensors,
  architectureMismatch,
  commonVocabulary,
  type Architecture,
  type ArchitectureFamily,
  type TensorRole,
  type TensorSpec,
} from './architecture.js';
export {
  sparsifyInPlace,
  type Rescale,
  type Sparsification,
  type SparsifyOptions,
} from './methods/sparsify.js';

// ---- executor: the merge plan (validation before any weight is read), the streaming executor, the model card
export {
  planMerge,
  formatPlanSummary,
  checkOutputDir,
  recipeSha256,
  isElementwise,
  type MergePlan,
  type PlanOptions,
  type PlannedModel,
  type PlannedTensor,
  type PlannedModelInput,
  type PlannedVocabulary,
  type TensorSource,
} from './plan.js';
// ---- tokenizer merges: the output vocabulary (tokenizer_source, the tokenizer: block) and its embedding rows
export {
  readModelTokenizer,
  stripTokenizer,
  buildVocabulary,
  tokenizerFiles,
  MissingTokenizerError,
  InvalidTokenizerError,
  type AddedToken,
  type ModelTokenizer,
  type OutputVocabulary,
  type VocabularySource,
} from './vocabulary.js';
export {
  planRowMap,
  paddedRows,
  permutation,
  TokenRowError,
  type RowMap,
  type DefaultRow,
  type RowMapInput,
} from './tokenizer-merge.js';
export {
  ModelNotFoundError,
  InvalidModelConfigError,
  ArchitectureMismatchError,
  MissingTensorError,
  TensorShapeMismatchError,
  TensorDTypeError,
  UnsupportedRecipeError,
  MemoryBudgetError,
  OutputExistsError,
  formatBytes,
  parseByteSize,
} from './validate.js';
export {
  executeMerge,
  runMerge,
  defaultThreads,
  MergeCancelledError,
  POOL_MIN_ELEMENTS,
  TOKENIZER_FILES,
  type ExecuteOptions,
  type MergeProgress,
  type MergeResult,
} from './executor.js';
export { modelCard } from './model-card.js';
export {
  EMR_MANIFEST,
  emrTaskName,
  materializeEmrTask,
  type EmrManifest,
  type EmrTaskManifest,
} from './emr-output.js';
export type { RecipeSlice, RecipeSliceSource } from './recipe.js';
