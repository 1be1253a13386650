// ParetoOptimizerService. The public API of @hm3/pareto-optimizer; empty until its issue lands.
export {};
