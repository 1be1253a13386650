// Merge recipes, method registry, planner, streaming executor. The public API of @hm3/merge; empty until its issue lands.
export {};
