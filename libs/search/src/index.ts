// The HM3 search loop (transport-free): the spec, the ports, content-addressed candidates, the
// strategies (hm3, hm3-amortized, baselines), the archive and front, recommendation. The public API of @hm3/search.
export {
  STRATEGIES,
  SINGLE_METHODS,
  InvalidSearchSpecError,
  parseSearchSpecYaml,
  validateSearchSpec,
  specToDocument,
  type DatasetRef,
  type ModelRef,
  type Objective,
  type RlSettings,
  type SearchBudget,
  type SearchSpec,
  type SingleMethod,
  type SpecIssue,
  type StrategyName,
  type UpperSettings,
} from './spec.js';
export type {
  EvaluatePort,
  EvaluationRequest,
  EvaluationResult,
  MergePort,
  ModelCatalogPort,
  ModelInfo,
  PathPolicyHandle,
  PathStepRef,
  PolicyCreateSpec,
  PolicyPoolModel,
  PolicyPort,
  ProposedPath,
  RecipeTerm,
  ResolvedPath,
  SearchRecipe,
  Split,
} from './ports.js';
export {
  canonicalise,
  canonicalJson,
  describePath,
  ownPathDraft,
  recipeId,
  sha256Hex,
  type CandidateDraft,
  type CanonicalCandidate,
  type PoolEntry,
} from './candidate.js';
export {
  drawPreferences,
  frontHypervolume,
  frontIndices,
  resolveModels,
  runSearch,
  type CandidateOrigin,
  type PoolModelSummary,
  type RoundSummary,
  type RunSearchOptions,
  type ScoredCandidate,
  type SearchDeps,
  type SearchEvent,
  type SearchResult,
} from './search.js';
export { majorityHead, mutatePath } from './strategies.js';
export { mapLimit } from './concurrency.js';
export { GroupCommit } from './group-commit.js';
export {
  frontMembers,
  pairedBootstrap,
  parsePreference,
  recommend,
  type BootstrapInterval,
  type Recommended,
  type RecommendScalarization,
} from './recommend.js';
