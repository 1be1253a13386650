// @hm3/tensor-merge: TensorMergeService (gRPC) and the merge-request consumer (Kafka) around @hm3/merge.
export {
  TensorMerge,
  type TensorMergeOptions,
  type RegisterResult,
  type ValidateResult,
  type MergeRunOptions,
  type MergeOutcome,
} from './tensor-merge.js';
export { tensorMergeHandlers } from './tensor-merge-service.js';
export {
  startMergeConsumer,
  envelopeRecord,
  MERGE_CONSUMER_GROUP,
  MERGE_TOPICS,
  type MergeTopics,
  type MergeConsumerOptions,
} from './merge-consumer.js';
export {
  startTensorMergeServer,
  type TensorMergeServerOptions,
  type RunningTensorMerge,
} from './tensor-merge-server.js';
export { mergeContentId } from './content-id.js';
export {
  readModelManifest,
  manifestDigest,
  sha256File,
  hashFolder,
  type ModelManifest,
  type ManifestFile,
} from './model-manifest.js';
export { resolveModelFolder, artifactIdOf, ARTIFACT_SCHEME } from './models-root.js';
export {
  assertCudaAvailable,
  cudaProviderStatus,
  onnxruntimeBindingDir,
  parseDevice,
  CUDA_PROVIDER_LIBRARIES,
  DEVICES,
  type CudaProviderStatus,
  type Device,
} from './device.js';
