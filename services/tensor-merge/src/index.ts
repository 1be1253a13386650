// TensorMergeService. The public API of @hm3/tensor-merge; empty until its issue lands.
export {};
