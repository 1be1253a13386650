// Benchmarks. The public API of @hm3/bench; empty until its issue lands.
export {};
