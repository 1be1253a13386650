// Dtypes, safetensors and sharded checkpoint IO, kernels, worker pool. The public API of @hm3/tensor; empty until its issue lands.
export {};
