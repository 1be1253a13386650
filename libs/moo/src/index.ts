// Multi-objective optimisation: dominance, hypervolume, scalarisation, NSGA-II, MOEA/D. The public API of @hm3/moo; empty until its issue lands.
export {};
