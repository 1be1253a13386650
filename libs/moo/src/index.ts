// Multi-objective optimisation for HM3: dominance, non-dominated sorting, the Pareto archive,
// hypervolume, scalarisations, weight vectors, and NSGA-II / MOEA/D / random search behind an
// asynchronous ask/tell interface. Objectives are maximised unless marked 'min'.
export type { Direction, ObjectiveVector } from './objectives.js';
export { assertObjectiveVectors, toMinimisation } from './objectives.js';
export { Rng } from './prng.js';
export { dominates, compareDominance } from './dominance.js';
export { nonDominatedSort, nonDominatedIndices, type NonDominatedSortOptions } from './non-dominated-sort.js';
export { crowdingDistance } from './crowding.js';
export { ParetoArchive, type ArchiveEntry, type ArchiveAddResult } from './archive.js';
export { idealAndNadir, normalise, type Bounds } from './normalise.js';
export {
  hypervolume,
  hypervolumeWfg,
  hypervolumeMonteCarlo,
  DEFAULT_REFERENCE_AFTER_NORMALISATION,
  type HypervolumeOptions,
  type MonteCarloOptions,
  type HypervolumeEstimate,
} from './hypervolume.js';
export {
  scalariser,
  weightedSum,
  tchebycheff,
  augmentedTchebycheff,
  pbi,
  DEFAULT_RHO,
  DEFAULT_THETA,
  type ScalarisationSpec,
  type ScalarisationKind,
  type ScalariserOptions,
} from './scalarisation.js';
export {
  dasDennis,
  dasDennisCount,
  dirichletWeights,
  uniformSimplexWeights,
  normaliseWeights,
  SIMPLEX_TOLERANCE,
  type NormaliseWeightsOptions,
} from './weight-vectors.js';
export {
  runOptimiser,
  runOptimiserAsync,
  type AskTellOptimiser,
  type Candidate,
  type Evaluated,
  type OptimiserProblem,
  type RunOptions,
} from './ask-tell.js';
export {
  NSGA2_SBX,
  NSGA2_MUTATION,
  MOEAD_SBX,
  MOEAD_MUTATION,
  type Box,
  type SbxParameters,
  type PolynomialMutationParameters,
} from './variation.js';
export { Nsga2, type Nsga2Options } from './nsga2.js';
export { Moead, type MoeadOptions } from './moead.js';
export { RandomSearch } from './random-search.js';
export {
  kneePoint,
  recommendForPreference,
  type Recommendation,
  type RecommendOptions,
} from './recommend.js';
export { zdt1, zdt2, zdt3, dtlz2, type BenchmarkProblem } from './problems.js';
