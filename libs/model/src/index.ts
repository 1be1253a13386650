// HF config to architecture, ONNX graph builder, inference-path runtime, tokenizers. The public API of @hm3/model.
export {
  readModelConfig,
  parseModelConfig,
  layerGraphKey,
  type LlamaArchitecture,
  type LlamaFamily,
} from './config.js';
export {
  UnsupportedArchitectureError,
  InvalidModelConfigError,
  ModelConfigNotFoundError,
  MissingTokenizerError,
  InvalidPathError,
  InvalidModelInputError,
  DeviceUnavailableError,
  type InvalidPathRule,
} from './errors.js';
export { GraphBuilder, OPSET, IR_VERSION } from './onnx-graph.js';
export {
  buildEmbeddingGraph,
  buildDecoderLayerGraph,
  buildHeadGraph,
  buildMonolithicGraph,
  layerTensorSpecs,
  ropeFrequencies,
  ropeTables,
  type LayerTensorSpec,
  type LayerRole,
  type ModelWeights,
} from './llama-graph.js';
export { ownPath, validatePath, type InferencePath, type PathStep, type Affine } from './inference-path.js';
export type { CausalLM, ForwardBatch, KvCache } from './causal-lm.js';
export { LayerKvCache } from './kv-cache.js';
export {
  ModelRuntime,
  PathModel,
  MonolithicModel,
  applyAffine,
  type Device,
  type RuntimeOptions,
} from './runtime.js';
export {
  WeightStore,
  type ModelSource,
  type WeightStoreOptions,
  type LayerTensors,
  type HeadTensors,
} from './weights.js';
export {
  defaultWeightCacheBytes,
  checkWeightCacheBytes,
  DEFAULT_WEIGHT_CACHE_FRACTION,
  type Pinned,
  type CacheEntryInfo,
} from './weight-cache.js';
export {
  sequenceLogits,
  loglikelihood,
  generateGreedy,
  attentionBias,
  DEFAULT_BATCH_SIZE,
  type LoglikelihoodRequest,
  type LoglikelihoodResult,
  type GenerateOptions,
} from './inference.js';
export { loadTokenizer, type TextTokenizer } from './tokenizer.js';
export {
  exportPathCheckpoint,
  loadExportedPath,
  ExportTargetExistsError,
  UnexportablePathError,
  InvalidExportedPathError,
  PATH_FILE_NAME,
  AFFINE_FILE_NAME,
  type ExportPathOptions,
  type ExportReport,
  type ExportedSource,
  type ExportedSourceFile,
  type ExportedPathFile,
} from './export-path.js';
