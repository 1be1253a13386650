// Dtypes, safetensors and sharded checkpoint IO, kernels, worker pool. The public API of @hm3/tensor.
export * from './dtypes.js';
export * from './checkpoint-errors.js';
export * from './safetensors-reader.js';
export * from './checkpoint.js';
export * from './safetensors-writer.js';
export * from './worker-pool.js';
export * from './kernels/index.js';
