// Tasks, datasets, metrics, evaluator core. The public API of @hm3/evaluation; empty until its issue lands.
export {};
