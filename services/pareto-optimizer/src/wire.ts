/**
 * Wire types (optimizer.proto, common.proto) <-> the search lib's domain types. The wire SearchSpec
 * becomes the snake_case document @hm3/search validates (one validation, errors naming the field);
 * the domain spec goes back to the wire for `hm3 search --server`.
 */
import { common, optimizer, policy } from '@hm3/proto';
import {
  specToDocument,
  validateSearchSpec,
  type Objective,
  type SearchRecipe,
  type SearchSpec,
  type StrategyName,
} from '@hm3/search';
import type { FrontRecord, ScoreRecord, SearchRecord, SearchState } from '@hm3/store';

const DTYPE_NAMES: Record<number, 'float32' | 'float64' | 'float16' | 'bfloat16'> = {
  [common.DType.F32]: 'float32',
  [common.DType.F64]: 'float64',
  [common.DType.F16]: 'float16',
  [common.DType.BF16]: 'bfloat16',
};

function dtypeToWire(name: string | null): common.DType {
  if (name === 'float32') return common.DType.F32;
  if (name === 'float64') return common.DType.F64;
  if (name === 'float16') return common.DType.F16;
  if (name === 'bfloat16') return common.DType.BF16;
  return common.DType.UNSPECIFIED;
}

/** Strategy names of the domain spec <-> the wire enum (the single-method baselines have no wire name). */
function strategyFromWire(s: optimizer.SearchStrategy): StrategyName {
  if (s === optimizer.SearchStrategy.PARAMETER_ONLY) return 'param-only';
  if (s === optimizer.SearchStrategy.ARCHITECTURE_ONLY) return 'arch-only';
  return 'hm3';
}

function strategyToWire(s: StrategyName): optimizer.SearchStrategy {
  if (s === 'param-only') return optimizer.SearchStrategy.PARAMETER_ONLY;
  if (s === 'arch-only') return optimizer.SearchStrategy.ARCHITECTURE_ONLY;
  return optimizer.SearchStrategy.HIERARCHICAL;
}

function scalar(p: Record<string, common.ParamValue> | undefined, name: string): number | undefined {
  const v = p?.[name]?.value;
  return v?.$case === 'scalar' ? v.value : undefined;
}

function ref(r: common.ModelRef | undefined): unknown {
  if (r === undefined) return undefined;
  return r.modelId === '' ? r.uri : { uri: r.uri, model_id: r.modelId };
}

/** The wire spec as the search lib's document, then validated (InvalidSearchSpecError names the field). */
export function specFromWire(spec: optimizer.SearchSpec | undefined): SearchSpec {
  const s = spec ?? optimizer.SearchSpec.fromPartial({});
  const rl = s.rl;
  const upper = s.upper;
  const doc: Record<string, unknown> = {
    name: s.name === '' ? 'search' : s.name,
    base: ref(s.base),
    experts: s.experts.map(ref),
    objectives: s.objectives.map((o) => ({
      name: o.name,
      ...(o.task === '' ? {} : { task: o.task }),
      dataset:
        o.dataset === undefined
          ? undefined
          : o.dataset.sha256 === ''
            ? o.dataset.uri
            : { uri: o.dataset.uri, sha256: o.dataset.sha256 },
      ...(o.metric === '' ? {} : { metric: o.metric }),
      ...(o.searchFraction === undefined ? {} : { search_fraction: o.searchFraction }),
      ...(o.splitSeed === 0n ? {} : { split_seed: Number(o.splitSeed) }),
      ...(o.maxExamples === 0 ? {} : { max_examples: o.maxExamples }),
    })),
    ...(s.preferenceCount === 0 ? {} : { preference_count: s.preferenceCount }),
    ...(s.preferenceSampling === optimizer.PreferenceSampling.DAS_DENNIS
      ? { preference_sampling: 'das-dennis' }
      : {}),
    // Zero is "no limit" on the wire, an absent field in the document.
    budget: {
      ...(s.budget?.maxEvaluations ? { max_evaluations: s.budget.maxEvaluations } : {}),
      ...(s.budget?.maxRounds ? { max_rounds: s.budget.maxRounds } : {}),
      ...(s.budget?.maxSeconds ? { max_seconds: s.budget.maxSeconds } : {}),
    },
    ...(s.tMax === 0 ? {} : { t_max: s.tMax }),
    strategy: strategyFromWire(s.strategy),
    ...(s.scalarization === policy.Scalarization.WEIGHTED_SUM ? { scalarization: 'weighted-sum' } : {}),
    seed: Number(s.seed),
  };
  if (upper) {
    const u: Record<string, unknown> = {};
    if (upper.method !== '') u['method'] = upper.method;
    const density = scalar(upper.parameters, 'density');
    const lambda = scalar(upper.parameters, 'lambda');
    if (density !== undefined || lambda !== undefined)
      u['parameters'] = {
        ...(density === undefined ? {} : { density }),
        ...(lambda === undefined ? {} : { lambda }),
      };
    if (upper.optimizer === optimizer.UpperLevelOptimizer.NSGA2) u['optimizer'] = 'nsga2';
    if (upper.population > 0) u['population'] = upper.population;
    const dtype = DTYPE_NAMES[upper.dtype];
    if (dtype === 'float32' || dtype === 'float64') u['dtype'] = dtype;
    const out = DTYPE_NAMES[upper.outDtype];
    if (out !== undefined && out !== 'float64') u['out_dtype'] = out;
    if (Object.keys(u).length > 0) doc['upper'] = u;
  }
  if (rl) {
    const r: Record<string, unknown> = {};
    const set = (key: string, v: number | undefined): void => {
      if (v !== undefined) r[key] = v;
    };
    set('length_penalty', rl.lengthPenalty);
    set('nearest_actions', rl.nearestActions);
    set('exploration', rl.exploration);
    set('discount', rl.discount);
    set('gae_lambda', rl.gaeLambda);
    set('clip_range', rl.clipRange);
    set('value_coef', rl.valueCoef);
    set('entropy_coef', rl.entropyCoef);
    set('learning_rate', rl.learningRate);
    set('hidden_size', rl.hiddenSize);
    set('embedding_size', rl.embeddingSize);
    set('episodes_per_iteration', rl.episodesPerIteration);
    set('epochs', rl.epochs);
    if (rl.rewardScalarization === policy.Scalarization.TCHEBYCHEFF)
      r['reward_scalarization'] = 'tchebycheff';
    if (rl.rewardScalarization === policy.Scalarization.WEIGHTED_SUM)
      r['reward_scalarization'] = 'weighted-sum';
    if (Object.keys(r).length > 0) doc['rl'] = r;
    if (rl.amortized === true && doc['strategy'] === 'hm3') doc['strategy'] = 'hm3-amortized';
  }
  return validateSearchSpec(doc, 'spec');
}

/**
 * The domain spec on the wire. Settings the proto has no field for (upper.budget_share, upper.bounds,
 * rl.mutation_share, the single-method strategies) travel only as their defaults.
 */
export function specToWire(spec: SearchSpec): optimizer.SearchSpec {
  const r = spec.rl;
  return optimizer.SearchSpec.fromPartial({
    name: spec.name,
    base: { uri: spec.base.uri, modelId: spec.base.modelId },
    experts: spec.experts.map((e) => ({ uri: e.uri, modelId: e.modelId })),
    objectives: spec.objectives.map(objectiveToWire),
    preferenceCount: spec.preferenceCount,
    preferenceSampling:
      spec.preferenceSampling === 'das-dennis'
        ? optimizer.PreferenceSampling.DAS_DENNIS
        : optimizer.PreferenceSampling.DIRICHLET,
    budget: {
      maxEvaluations: spec.budget.maxEvaluations,
      maxRounds: spec.budget.maxRounds,
      maxSeconds: spec.budget.maxSeconds,
    },
    tMax: spec.tMax,
    strategy: strategyToWire(spec.strategy),
    upper: {
      method: spec.upper.method,
      parameters: {
        density: { value: { $case: 'scalar', value: spec.upper.density } },
        lambda: { value: { $case: 'scalar', value: spec.upper.lambda } },
      },
      optimizer:
        spec.upper.optimizer === 'nsga2'
          ? optimizer.UpperLevelOptimizer.NSGA2
          : optimizer.UpperLevelOptimizer.FIXED_WEIGHTS,
      population: spec.upper.population,
      dtype: dtypeToWire(spec.upper.dtype),
      outDtype: dtypeToWire(spec.upper.outDtype),
    },
    rl: {
      lengthPenalty: r.lengthPenalty,
      nearestActions: r.nearestActions,
      exploration: r.exploration,
      discount: r.discount,
      gaeLambda: r.gaeLambda,
      clipRange: r.clipRange,
      valueCoef: r.valueCoef,
      entropyCoef: r.entropyCoef,
      learningRate: r.learningRate,
      hiddenSize: r.hiddenSize,
      embeddingSize: r.embeddingSize,
      episodesPerIteration: r.episodesPerIteration,
      epochs: r.epochs,
      amortized: spec.strategy === 'hm3-amortized',
      rewardScalarization:
        r.rewardScalarization === 'tchebycheff'
          ? policy.Scalarization.TCHEBYCHEFF
          : policy.Scalarization.WEIGHTED_SUM,
    },
    scalarization:
      spec.scalarization === 'weighted-sum'
        ? policy.Scalarization.WEIGHTED_SUM
        : policy.Scalarization.TCHEBYCHEFF,
    seed: BigInt(spec.seed),
  });
}

export function objectiveToWire(o: Objective): common.Objective {
  return {
    name: o.name,
    task: o.task,
    dataset: { datasetId: '', uri: o.dataset.uri, sha256: o.dataset.sha256 },
    metric: o.metric,
    searchFraction: o.searchFraction,
    splitSeed: BigInt(o.splitSeed),
    maxExamples: o.maxExamples,
  };
}

/** A search recipe as the wire MergeRecipe tensor-merge consumes (model references as the spec spells them). */
export function recipeToWire(
  recipe: SearchRecipe,
  base: { uri: string; modelId: string },
  experts: readonly { uri: string; modelId: string }[],
): common.MergeRecipe {
  const usesDensity = recipe.method !== 'task_arithmetic' && recipe.method !== 'linear';
  return common.MergeRecipe.fromPartial({
    method: recipe.method,
    base: { uri: base.uri, modelId: base.modelId },
    models: recipe.terms
      .filter((t) => t.weight !== 0)
      .map((t) => ({
        model: { uri: experts[t.expert]!.uri, modelId: experts[t.expert]!.modelId },
        parameters: {
          weight: { value: { $case: 'scalar', value: t.weight } },
          ...(usesDensity ? { density: { value: { $case: 'scalar', value: t.density } } } : {}),
        },
      })),
    parameters: { lambda: { value: { $case: 'scalar', value: recipe.lambda } } },
    dtype: dtypeToWire(recipe.dtype),
    outDtype: dtypeToWire(recipe.outDtype),
    seed: BigInt(recipe.seed),
  });
}

export function stateToWire(state: SearchState | 'CANCELLING'): optimizer.SearchState {
  switch (state) {
    case 'PENDING':
      return optimizer.SearchState.PENDING;
    case 'RUNNING':
      return optimizer.SearchState.RUNNING;
    case 'CANCELLING':
      return optimizer.SearchState.CANCELLING;
    case 'COMPLETED':
      return optimizer.SearchState.SUCCEEDED;
    case 'FAILED':
      return optimizer.SearchState.FAILED;
    case 'CANCELLED':
      return optimizer.SearchState.CANCELLED;
  }
}

export function stateFromWire(state: optimizer.SearchState): SearchState | undefined {
  switch (state) {
    case optimizer.SearchState.PENDING:
      return 'PENDING';
    case optimizer.SearchState.RUNNING:
    case optimizer.SearchState.CANCELLING:
      return 'RUNNING';
    case optimizer.SearchState.SUCCEEDED:
      return 'COMPLETED';
    case optimizer.SearchState.FAILED:
      return 'FAILED';
    case optimizer.SearchState.CANCELLED:
      return 'CANCELLED';
    default:
      return undefined;
  }
}

export interface StatusFacts {
  readonly record: SearchRecord;
  readonly cancelling: boolean;
  readonly evaluations: number;
  readonly candidatesScored: number;
  readonly front: FrontRecord | undefined;
}

export function statusToWire(f: StatusFacts): optimizer.SearchStatus {
  const name = typeof f.record.spec['name'] === 'string' ? f.record.spec['name'] : '';
  const state = f.cancelling && f.record.state === 'RUNNING' ? 'CANCELLING' : f.record.state;
  return {
    searchId: f.record.id,
    name,
    state: stateToWire(state),
    roundsCompleted: f.record.round,
    evaluationsDone: f.evaluations,
    candidatesScored: f.candidatesScored,
    frontSize: f.front?.candidateIds.length ?? 0,
    hypervolume: f.front?.hypervolume ?? 0,
    message: f.record.error ?? '',
    createdAt: f.record.createdAt,
    updatedAt: f.record.updatedAt,
  };
}

export function splitToWire(split: 'search' | 'heldout'): common.Split {
  return split === 'heldout' ? common.Split.HELDOUT : common.Split.SEARCH;
}

export function scoresToWire(scores: readonly ScoreRecord[]): common.Score[] {
  return scores.map((s) => ({
    objective: s.objective,
    metric: typeof s.details?.['metric'] === 'string' ? s.details['metric'] : '',
    split: splitToWire(s.split),
    value: s.value,
    exampleCount: Number(s.details?.['exampleCount'] ?? s.details?.['examples'] ?? 0),
  }));
}

export { specToDocument };
