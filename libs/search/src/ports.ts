/**
 * The ports the search loop talks to. The loop knows nothing of processes, files or transports: the
 * embedded wiring (tools/cli/src/embedded) plugs the real cores in, in one process; the
 * pareto-optimizer service will plug Kafka-backed adapters into the same ports.
 */
import type { ModelRef, Objective, RlSettings } from './spec.js';

/** What the search needs to know about a model: where it is, what it hashes to, its shape. */
export interface ModelInfo {
  readonly ref: ModelRef;
  /** Where an adapter finds the model (a folder, or `artifact://<id>`). */
  readonly uri: string;
  /** Content hash of its weights: part of every candidate id that uses it. */
  readonly sha256: string;
  /** Architecture family (config.json `architectures[0]`); experts must share it with the base. */
  readonly architecture: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  /** Cheap per-layer weight statistics for the path policy's state (optional). */
  readonly layerFeatures?: readonly (readonly number[])[];
}

/** Resolves model references; throws NotFoundError / FailedPreconditionError naming `field`. */
export interface ModelCatalogPort {
  describe(ref: ModelRef, field: string): Promise<ModelInfo>;
}

/** One expert's share in a recipe. */
export interface RecipeTerm {
  /** Index of the expert in the spec. */
  readonly expert: number;
  readonly weight: number;
  readonly density: number;
}

/** A parameter-space merge of the experts against the base (the search's subset of MergeRecipe). */
export interface SearchRecipe {
  readonly method: string;
  readonly terms: readonly RecipeTerm[];
  readonly lambda: number;
  readonly seed: number;
  readonly dtype: 'float32' | 'float64';
  readonly outDtype: 'float32' | 'float16' | 'bfloat16' | null;
}

/** Materialises recipes. `recipeId` is the content id (also the artifact id of the checkpoint). */
export interface MergePort {
  merge(recipe: SearchRecipe, recipeId: string, signal?: AbortSignal): Promise<{ uri: string }>;
}

export type Split = 'search' | 'heldout';

export interface PathStepRef {
  readonly poolIndex: number;
  readonly layerIndex: number;
}

/** An inference path over model locations, ready to run. */
export interface ResolvedPath {
  readonly pool: readonly string[];
  readonly steps: readonly PathStepRef[];
  readonly headSource: number;
}

export interface EvaluationRequest {
  readonly candidateId: string;
  readonly path: ResolvedPath;
  readonly objectives: readonly Objective[];
  readonly split: Split;
  readonly signal?: AbortSignal;
}

export interface EvaluationResult {
  /** One score per objective, higher is better. */
  readonly scores: readonly number[];
  /** Examples scored per objective. */
  readonly examples: readonly number[];
  /** Per objective, per example 0..1 (for paired comparisons); optional. */
  readonly perExample?: readonly (readonly number[])[];
}

/** Scores a candidate on every objective of one split. */
export interface EvaluatePort {
  evaluate(request: EvaluationRequest): Promise<EvaluationResult>;
}

export interface PolicyPoolModel {
  readonly id: string;
  readonly layers: number;
  readonly hiddenSize: number;
  readonly layerFeatures?: readonly (readonly number[])[];
}

export interface PolicyCreateSpec {
  readonly pool: readonly PolicyPoolModel[];
  readonly tMax: number;
  readonly objectives: number;
  /** One preference-conditioned policy (w in the state) instead of one per preference. */
  readonly amortized: boolean;
  readonly settings: RlSettings;
  /** z* for a Tchebycheff reward. */
  readonly ideal: readonly number[];
  readonly seed: number;
}

export interface ProposedPath {
  /** Handle for `learn`. */
  readonly episode: number;
  readonly preference: readonly number[];
  readonly steps: readonly PathStepRef[];
}

/** A path policy: proposes paths for preferences, learns from their episode rewards (PPO). */
export interface PathPolicyHandle {
  propose(preferences: readonly (readonly number[])[]): Promise<ProposedPath[]>;
  /**
   * The episodes' rewards and the objective scores they came from (per episode, one per objective:
   * an amortised policy learns each objective's value from them, @hm3/rl objectiveValueCoef).
   */
  learn(
    episodes: readonly number[],
    rewards: readonly number[],
    scores: readonly (readonly number[])[],
  ): Promise<void>;
  close(): Promise<void>;
}

export interface PolicyPort {
  create(spec: PolicyCreateSpec): Promise<PathPolicyHandle>;
}
