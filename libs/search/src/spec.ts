/**
 * The search spec: what a search needs (mirrors hm3.v1.SearchSpec, snake_case keys as in the proto),
 * validated once at the edge with zod. Errors name the field path (`objectives[1].dataset`,
 * `budget.max_evaluations`); nothing downstream sees raw YAML.
 */
import { InvalidArgumentError } from '@hm3/errors';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * How a search explores. `hm3`: upper-level merge per preference, then the path policy over
 * {experts, merged}; `hm3-amortized`: one preference-conditioned policy; the rest are baselines at the
 * same evaluation budget (`param-only`, `arch-only`, `random`) and single methods (1/K weights, density 0.5).
 */
export const STRATEGIES = [
  'hm3',
  'hm3-amortized',
  'param-only',
  'arch-only',
  'random',
  'task_arithmetic',
  'ties',
  'dare_ties',
] as const;
export type StrategyName = (typeof STRATEGIES)[number];
export const SINGLE_METHODS = ['task_arithmetic', 'ties', 'dare_ties'] as const;
export type SingleMethod = (typeof SINGLE_METHODS)[number];

export interface ModelRef {
  /** A folder (relative to the spec's folder), `zoo:<model>`, or `artifact://<id>`. */
  readonly uri: string;
  /** Registry id; empty when addressed by uri alone. */
  readonly modelId: string;
}

export interface DatasetRef {
  /** One JSONL file split by search_fraction, or `zoo:<task>` (the zoo's own search / heldout files). */
  readonly uri: string;
  /** Hex sha256 of the file; a reader refuses other bytes. Empty: not checked. */
  readonly sha256: string;
}

export interface Objective {
  readonly name: string;
  /** Evaluator task id, e.g. "exact_match". */
  readonly task: string;
  readonly dataset: DatasetRef;
  /** Empty: the task's default metric. */
  readonly metric: string;
  readonly searchFraction: number;
  readonly splitSeed: number;
  /** Examples scored per evaluation (a prefix of the split); 0: all. */
  readonly maxExamples: number;
}

export interface SearchBudget {
  /** Evaluations on the search split (cache hits do not count); 0: no limit. */
  readonly maxEvaluations: number;
  /** Rounds; 0: no limit. */
  readonly maxRounds: number;
  /** Wall-clock seconds; 0: no limit. */
  readonly maxSeconds: number;
}

export interface UpperSettings {
  /** Merge method of the per-preference recipes. */
  readonly method: string;
  /** Keep probability of DARE / top-k fraction of TIES. */
  readonly density: number;
  /** Scale of the merged task vector. */
  readonly lambda: number;
  /** `fixed-weights`: w is the task weights (the paper); `nsga2`: NSGA-II over weights, densities, lambda. */
  readonly optimizer: 'fixed-weights' | 'nsga2';
  /** NSGA-II population; 0: max(8, N). */
  readonly population: number;
  /** Share of the evaluation budget the upper-level NSGA-II may use in `hm3` (the rest goes to paths). */
  readonly budgetShare: number;
  /** Search box of NSGA-II (param-only, hm3 with nsga2, random). */
  readonly bounds: {
    readonly weight: readonly [number, number];
    readonly density: readonly [number, number];
    readonly lambda: readonly [number, number];
  };
  readonly dtype: 'float32' | 'float64';
  /** Output dtype of merged checkpoints; null: the experts'. */
  readonly outDtype: 'float32' | 'float16' | 'bfloat16' | null;
}

export interface RlSettings {
  readonly lengthPenalty: number;
  readonly nearestActions: number;
  readonly exploration: number;
  readonly discount: number;
  readonly gaeLambda: number;
  readonly clipRange: number;
  readonly valueCoef: number;
  readonly entropyCoef: number;
  /** Adam rate of the critic and the state encoder (PolicySettings.learning_rate); the actor head keeps its own. */
  readonly learningRate: number;
  readonly hiddenSize: number;
  readonly embeddingSize: number;
  /** Paths proposed per preference per round (one PPO update each). */
  readonly episodesPerIteration: number;
  readonly epochs: number;
  /** Reward: the paper's weighted sum (minus beta T) or Tchebycheff. */
  readonly rewardScalarization: 'weighted-sum' | 'tchebycheff';
  /**
   * Share of each round's paths that are mutations of the best paths found so far for that preference
   * (a layer, or a block of layers, swapped for the same positions of another pool model) instead of
   * policy proposals. 0: the policy alone.
   */
  readonly mutationShare: number;
}

export interface SearchSpec {
  readonly name: string;
  readonly base: ModelRef;
  readonly experts: readonly ModelRef[];
  readonly objectives: readonly Objective[];
  readonly preferenceCount: number;
  readonly preferenceSampling: 'dirichlet' | 'das-dennis';
  readonly budget: SearchBudget;
  /** Longest path; 0: the base model's layer count. */
  readonly tMax: number;
  readonly strategy: StrategyName;
  readonly upper: UpperSettings;
  readonly rl: RlSettings;
  /** Scalarisation of the per-preference subproblems and of recommendations. */
  readonly scalarization: 'tchebycheff' | 'weighted-sum';
  readonly seed: number;
}

const modelRef = z.union([
  z.string().min(1),
  z.object({ uri: z.string().default(''), model_id: z.string().default('') }).strict(),
]);

const datasetRef = z.union([
  z.string().min(1),
  z
    .object({
      uri: z.string().min(1),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
    })
    .strict(),
]);

const objective = z
  .object({
    name: z.string().min(1),
    task: z.string().min(1).default('exact_match'),
    dataset: datasetRef,
    metric: z.string().default(''),
    search_fraction: z.number().gt(0).lt(1).default(0.7),
    split_seed: z.number().int().nonnegative().default(0),
    max_examples: z.number().int().nonnegative().default(0),
  })
  .strict();

const range = z.tuple([z.number(), z.number()]).refine(([lo, hi]) => lo <= hi, 'low must be <= high');

const upper = z
  .object({
    method: z.enum(['dare_ties', 'ties', 'task_arithmetic', 'dare_linear']).default('dare_ties'),
    parameters: z
      .object({ density: z.number().gt(0).max(1).default(0.5), lambda: z.number().gt(0).max(10).default(1) })
      .strict()
      .default({ density: 0.5, lambda: 1 }),
    optimizer: z.enum(['fixed-weights', 'nsga2']).default('fixed-weights'),
    population: z.number().int().nonnegative().default(0),
    budget_share: z.number().gt(0).lt(1).default(0.3),
    bounds: z
      .object({
        weight: range.default([0, 1]),
        density: range.default([0.1, 1]),
        lambda: range.default([0.1, 1.5]),
      })
      .strict()
      .default({ weight: [0, 1], density: [0.1, 1], lambda: [0.1, 1.5] }),
    dtype: z.enum(['float32', 'float64']).default('float32'),
    out_dtype: z.enum(['float32', 'float16', 'bfloat16']).nullable().default(null),
  })
  .strict();

const rl = z
  .object({
    length_penalty: z.number().nonnegative().default(0.01),
    nearest_actions: z.number().int().positive().default(8),
    exploration: z.number().min(0).max(1).default(0.1),
    discount: z.number().min(0).max(1).default(0.99),
    gae_lambda: z.number().min(0).max(1).default(0.95),
    clip_range: z.number().gt(0).max(1).default(0.2),
    value_coef: z.number().nonnegative().default(0.5),
    entropy_coef: z.number().nonnegative().default(0.001),
    learning_rate: z.number().positive().default(3e-3),
    hidden_size: z.number().int().positive().default(64),
    embedding_size: z.number().int().positive().default(8),
    episodes_per_iteration: z.number().int().positive().default(8),
    epochs: z.number().int().positive().default(4),
    reward_scalarization: z.enum(['weighted-sum', 'tchebycheff']).default('weighted-sum'),
    mutation_share: z.number().min(0).max(1).default(0.5),
  })
  .strict();

const budget = z
  .object({
    max_evaluations: z.number().int().positive('must be at least 1 (0 is no budget)').optional(),
    max_rounds: z.number().int().positive('must be at least 1').optional(),
    max_seconds: z.number().int().positive('must be at least 1').optional(),
  })
  .strict()
  .refine((b) => b.max_evaluations !== undefined || b.max_rounds !== undefined, {
    message: 'set max_evaluations or max_rounds',
  });

const specSchema = z
  .object({
    name: z.string().default('search'),
    base: modelRef,
    experts: z.array(modelRef).min(2, 'a search merges at least 2 experts'),
    objectives: z.array(objective).min(1, 'at least one objective'),
    preference_count: z.number().int().positive().default(4),
    preference_sampling: z.enum(['dirichlet', 'das-dennis']).default('dirichlet'),
    budget,
    t_max: z.number().int().nonnegative().default(0),
    strategy: z.enum(STRATEGIES).default('hm3'),
    upper: upper.default(upper.parse({})),
    rl: rl.default(rl.parse({})),
    scalarization: z.enum(['tchebycheff', 'weighted-sum']).default('tchebycheff'),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();

/** One problem of a spec, with the field path it belongs to. */
export interface SpecIssue {
  readonly path: string;
  readonly message: string;
}

/** A spec that fails validation: every issue with its field path (first one in the message). */
export class InvalidSearchSpecError extends InvalidArgumentError {
  readonly issues: readonly SpecIssue[];
  constructor(source: string, issues: readonly SpecIssue[]) {
    const first = issues[0];
    super(
      `${source}: ${first ? `${first.path || '(root)'}: ${first.message}` : 'invalid'}` +
        (issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''),
      { file: source, field: first?.path ?? '', issues },
    );
    this.issues = issues;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function toRef(value: z.infer<typeof modelRef>): ModelRef {
  return typeof value === 'string'
    ? { uri: value, modelId: '' }
    : { uri: value.uri, modelId: value.model_id };
}

/** Validates a parsed document (from YAML or JSON) into a SearchSpec; InvalidSearchSpecError on any issue. */
export function validateSearchSpec(document: unknown, source = 'spec'): SearchSpec {
  const issues: SpecIssue[] = [];
  // An objective without a dataset is the commonest mistake: say so plainly.
  if (
    document !== null &&
    typeof document === 'object' &&
    Array.isArray((document as { objectives?: unknown }).objectives)
  ) {
    (document as { objectives: unknown[] }).objectives.forEach((o, i) => {
      if (o !== null && typeof o === 'object' && (o as { dataset?: unknown }).dataset === undefined)
        issues.push({ path: `objectives[${i}].dataset`, message: 'every objective needs a dataset' });
    });
  }
  const parsed = specSchema.safeParse(document);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = formatPath(issue.path);
      if (!issues.some((i) => i.path === path)) issues.push({ path, message: issue.message });
    }
  }
  if (issues.length > 0 || !parsed.success) throw new InvalidSearchSpecError(source, issues);
  const d = parsed.data;
  const refs = [d.base, ...d.experts].map(toRef);
  refs.forEach((r, i) => {
    if (r.uri === '' && r.modelId === '')
      issues.push({ path: i === 0 ? 'base' : `experts[${i - 1}]`, message: 'needs a uri or a model_id' });
  });
  const names = new Set<string>();
  d.objectives.forEach((o, i) => {
    if (names.has(o.name))
      issues.push({ path: `objectives[${i}].name`, message: `"${o.name}" is used twice` });
    names.add(o.name);
  });
  if (d.upper.bounds.weight[0] < 0)
    issues.push({ path: 'upper.bounds.weight', message: 'weights must be non-negative' });
  if (d.upper.bounds.density[0] <= 0 || d.upper.bounds.density[1] > 1)
    issues.push({ path: 'upper.bounds.density', message: 'densities lie in (0, 1]' });
  if (d.upper.bounds.lambda[0] <= 0)
    issues.push({ path: 'upper.bounds.lambda', message: 'lambda must be positive' });
  if (issues.length > 0) throw new InvalidSearchSpecError(source, issues);
  return {
    name: d.name,
    base: refs[0]!,
    experts: refs.slice(1),
    objectives: d.objectives.map((o) => ({
      name: o.name,
      task: o.task,
      dataset:
        typeof o.dataset === 'string'
          ? { uri: o.dataset, sha256: '' }
          : { uri: o.dataset.uri, sha256: o.dataset.sha256 ?? '' },
      metric: o.metric,
      searchFraction: o.search_fraction,
      splitSeed: o.split_seed,
      maxExamples: o.max_examples,
    })),
    preferenceCount: d.preference_count,
    preferenceSampling: d.preference_sampling,
    budget: {
      maxEvaluations: d.budget.max_evaluations ?? 0,
      maxRounds: d.budget.max_rounds ?? 0,
      maxSeconds: d.budget.max_seconds ?? 0,
    },
    tMax: d.t_max,
    strategy: d.strategy,
    upper: {
      method: d.upper.method,
      density: d.upper.parameters.density,
      lambda: d.upper.parameters.lambda,
      optimizer: d.upper.optimizer,
      population: d.upper.population,
      budgetShare: d.upper.budget_share,
      bounds: d.upper.bounds,
      dtype: d.upper.dtype,
      outDtype: d.upper.out_dtype,
    },
    rl: {
      lengthPenalty: d.rl.length_penalty,
      nearestActions: d.rl.nearest_actions,
      exploration: d.rl.exploration,
      discount: d.rl.discount,
      gaeLambda: d.rl.gae_lambda,
      clipRange: d.rl.clip_range,
      valueCoef: d.rl.value_coef,
      entropyCoef: d.rl.entropy_coef,
      learningRate: d.rl.learning_rate,
      hiddenSize: d.rl.hidden_size,
      embeddingSize: d.rl.embedding_size,
      episodesPerIteration: d.rl.episodes_per_iteration,
      epochs: d.rl.epochs,
      rewardScalarization: d.rl.reward_scalarization,
      mutationShare: d.rl.mutation_share,
    },
    scalarization: d.scalarization,
    seed: d.seed,
  };
}

/** Parses YAML text (or JSON, a subset) and validates it. */
export function parseSearchSpecYaml(text: string, source = 'spec.yaml'): SearchSpec {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    throw new InvalidSearchSpecError(source, [
      { path: '', message: `not valid YAML: ${(error as Error).message.split('\n')[0]}` },
    ]);
  }
  return validateSearchSpec(document, source);
}

/** The spec back in its document form (snake_case), for search.json and for re-running. */
export function specToDocument(spec: SearchSpec): Record<string, unknown> {
  const ref = (r: ModelRef) => (r.modelId === '' ? r.uri : { uri: r.uri, model_id: r.modelId });
  return {
    name: spec.name,
    base: ref(spec.base),
    experts: spec.experts.map(ref),
    objectives: spec.objectives.map((o) => ({
      name: o.name,
      task: o.task,
      dataset: o.dataset.sha256 === '' ? o.dataset.uri : { uri: o.dataset.uri, sha256: o.dataset.sha256 },
      ...(o.metric === '' ? {} : { metric: o.metric }),
      search_fraction: o.searchFraction,
      split_seed: o.splitSeed,
      max_examples: o.maxExamples,
    })),
    preference_count: spec.preferenceCount,
    preference_sampling: spec.preferenceSampling,
    budget: {
      ...(spec.budget.maxEvaluations > 0 ? { max_evaluations: spec.budget.maxEvaluations } : {}),
      ...(spec.budget.maxRounds > 0 ? { max_rounds: spec.budget.maxRounds } : {}),
      ...(spec.budget.maxSeconds > 0 ? { max_seconds: spec.budget.maxSeconds } : {}),
    },
    t_max: spec.tMax,
    strategy: spec.strategy,
    upper: {
      method: spec.upper.method,
      parameters: { density: spec.upper.density, lambda: spec.upper.lambda },
      optimizer: spec.upper.optimizer,
      population: spec.upper.population,
      budget_share: spec.upper.budgetShare,
      bounds: spec.upper.bounds,
      dtype: spec.upper.dtype,
      out_dtype: spec.upper.outDtype,
    },
    rl: {
      length_penalty: spec.rl.lengthPenalty,
      nearest_actions: spec.rl.nearestActions,
      exploration: spec.rl.exploration,
      discount: spec.rl.discount,
      gae_lambda: spec.rl.gaeLambda,
      clip_range: spec.rl.clipRange,
      value_coef: spec.rl.valueCoef,
      entropy_coef: spec.rl.entropyCoef,
      learning_rate: spec.rl.learningRate,
      hidden_size: spec.rl.hiddenSize,
      embedding_size: spec.rl.embeddingSize,
      episodes_per_iteration: spec.rl.episodesPerIteration,
      epochs: spec.rl.epochs,
      reward_scalarization: spec.rl.rewardScalarization,
      mutation_share: spec.rl.mutationShare,
    },
    scalarization: spec.scalarization,
    seed: spec.seed,
  };
}
