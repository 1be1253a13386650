/**
 * The HM3 search loop over ports: models resolved and checked, preferences drawn, the strategy run in
 * rounds under one evaluation budget, every scored candidate archived (content ids: never scored
 * twice), the front and its hypervolume recorded per round, and the final front re-scored on the
 * held-out split. Transport-free: the same loop runs embedded (one process) and, later, in the
 * pareto-optimizer service over Kafka-backed ports.
 */
import { FailedPreconditionError, Hm3Error, InvalidArgumentError } from '@hm3/errors';
import { dasDennis, dasDennisCount, dirichletWeights, hypervolume, nonDominatedIndices } from '@hm3/moo';
import type { CandidateRecord, ScoreRecord, Store } from '@hm3/store';
import {
  canonicalJson,
  canonicalise,
  describePath,
  sha256Hex,
  recipeId,
  resolvePath,
  type CandidateDraft,
  type CanonicalCandidate,
  type PoolEntry,
} from './candidate.js';
import type {
  EvaluatePort,
  MergePort,
  ModelCatalogPort,
  ModelInfo,
  PathStepRef,
  PolicyPort,
  SearchRecipe,
} from './ports.js';
import { specToDocument, type SearchSpec } from './spec.js';
import { mapLimit } from './concurrency.js';
import { GroupCommit } from './group-commit.js';
import { runStrategy } from './strategies.js';

export interface SearchDeps {
  readonly catalog: ModelCatalogPort;
  readonly merge: MergePort;
  readonly evaluate: EvaluatePort;
  readonly policy: PolicyPort;
  readonly store: Store;
  /** Milliseconds clock (tests pass a fake one). */
  readonly now?: () => number;
  readonly onEvent?: (event: SearchEvent) => void;
  /** Stops new work: the search ends CANCELLED with its front so far (re-scored on held-out). */
  readonly signal?: AbortSignal;
  /**
   * Evaluations (and merges) a round keeps in flight at once; default 1 (the embedded search runs
   * its evaluations in this process). Results, archive order and budget decisions do not depend on it.
   */
  readonly concurrency?: number;
}

export type CandidateOrigin = 'seed' | 'start' | 'merge' | 'upper' | 'policy' | 'mutation' | 'random';

export interface PoolModelSummary {
  readonly key: string;
  readonly label: string;
  readonly uri: string;
  readonly recipeId?: string;
  readonly recipe?: SearchRecipe;
}

export interface ScoredCandidate {
  readonly id: string;
  readonly round: number;
  readonly origin: CandidateOrigin;
  /** The preference it was proposed for (absent for seeds and NSGA-II proposals). */
  readonly preference?: readonly number[];
  readonly label: string;
  /** The models it uses, head source first. */
  readonly pool: readonly PoolModelSummary[];
  readonly steps: readonly PathStepRef[];
  readonly headSource: number;
  /** One model as is (its own layers, its own head). */
  readonly pure: boolean;
  /** Scores per objective on the search split. */
  readonly search: readonly number[];
  heldout?: readonly number[];
  heldoutPerExample?: readonly (readonly number[])[];
}

export interface RoundSummary {
  readonly round: number;
  /** Evaluations done so far (cache hits do not count). */
  readonly evaluations: number;
  /** Candidates scored in this round (cache hits included). */
  readonly candidatesScored: number;
  readonly frontSize: number;
  /** Hypervolume of the front on the search split (reference: 0 in every objective). */
  readonly hypervolume: number;
}

export interface SearchResult {
  readonly searchId: string;
  readonly state: 'SUCCEEDED' | 'CANCELLED';
  readonly spec: Record<string, unknown>;
  readonly strategy: string;
  readonly objectives: readonly string[];
  readonly experts: readonly { label: string; uri: string }[];
  readonly base: { uri: string };
  readonly preferences: readonly (readonly number[])[];
  /** z*: the best expert score per objective (search split). */
  readonly ideal: readonly number[];
  readonly evaluations: number;
  readonly budget: number;
  readonly rounds: readonly RoundSummary[];
  readonly candidates: readonly ScoredCandidate[];
  /** Ids of the final front (non-dominated on the search split). */
  readonly front: readonly string[];
  readonly hypervolume: { readonly search: number; readonly heldout: number };
  readonly seconds: number;
  /** Why it stopped: budget, rounds, time, converged, cancelled, done. */
  readonly stopReason: string;
}

export type SearchEvent =
  | { type: 'search.started'; searchId: string; strategy: string; budget: number; preferences: number }
  | { type: 'round.started'; round: number; planned: number }
  | {
      type: 'candidate.scored';
      round: number;
      candidate: ScoredCandidate;
      cached: boolean;
      evaluations: number;
    }
  | { type: 'round.completed'; summary: RoundSummary }
  | { type: 'heldout.progress'; done: number; total: number }
  | { type: 'search.completed'; result: SearchResult };

/** Reference point of every recorded hypervolume: 0 in every objective (scores lie in [0, 1]). */
export function frontHypervolume(points: readonly (readonly number[])[]): number {
  if (points.length === 0) return 0;
  return hypervolume(points, { reference: new Array<number>(points[0]!.length).fill(0) });
}

/** Indices of the non-dominated points (maximised). */
export function frontIndices(points: readonly (readonly number[])[]): number[] {
  return points.length === 0 ? [] : nonDominatedIndices(points);
}

/** The N preference vectors of a spec (seeded Dirichlet(1..1), or the smallest Das-Dennis lattice with >= N). */
export function drawPreferences(spec: SearchSpec): number[][] {
  const k = spec.objectives.length;
  if (k === 1) return [[1]];
  if (spec.preferenceSampling === 'das-dennis') {
    let p = 1;
    while (dasDennisCount(k, p) < spec.preferenceCount) p++;
    return dasDennis(k, p);
  }
  return dirichletWeights(spec.preferenceCount, k, 1, spec.seed);
}

/** Resolves and checks every model of a spec before anything runs: errors name the field. */
export async function resolveModels(
  spec: SearchSpec,
  catalog: ModelCatalogPort,
): Promise<{ base: ModelInfo; experts: ModelInfo[] }> {
  const base = await catalog.describe(spec.base, 'base');
  const experts: ModelInfo[] = [];
  for (const [i, ref] of spec.experts.entries()) {
    const info = await catalog.describe(ref, `experts[${i}]`);
    const field = `experts[${i}]`;
    if (info.architecture !== base.architecture)
      throw new FailedPreconditionError(
        `${field}: ${ref.uri || ref.modelId} is a ${info.architecture}, the base is a ${base.architecture}; experts must share the base's architecture`,
        { field, architecture: info.architecture, expected: base.architecture },
      );
    if (info.numLayers !== base.numLayers || info.hiddenSize !== base.hiddenSize)
      throw new FailedPreconditionError(
        `${field}: ${ref.uri || ref.modelId} has ${info.numLayers} layers of width ${info.hiddenSize}, the base ${base.numLayers} of ${base.hiddenSize}; experts must share the base's architecture`,
        { field, numLayers: info.numLayers, hiddenSize: info.hiddenSize },
      );
    experts.push(info);
  }
  if (
    spec.upper.optimizer === 'fixed-weights' &&
    spec.objectives.length !== experts.length &&
    usesFixedWeights(spec)
  )
    throw new InvalidArgumentError(
      `objectives: ${spec.objectives.length} objectives for ${experts.length} experts; fixed-weight merges use the preference as the experts' weights, so give one objective per expert (or upper.optimizer: nsga2)`,
      { field: 'objectives' },
    );
  return { base, experts };
}

function usesFixedWeights(spec: SearchSpec): boolean {
  return spec.strategy === 'hm3' || spec.strategy === 'hm3-amortized';
}

function labelOf(info: ModelInfo, index: number): string {
  const tail = info.uri.replace(/\/+$/, '').split(/[/:]/).pop() ?? '';
  return tail === '' ? `expert-${index}` : tail;
}

class BudgetExhausted extends Error {}

/** A proposal to score: the draft and where it came from. */
export interface ScoreItem {
  readonly draft: CandidateDraft;
  readonly meta: { readonly origin: CandidateOrigin; readonly preference?: readonly number[] };
}

/** The state of one running search, shared by the strategies. */
export class SearchContext {
  readonly k: number;
  readonly tMax: number;
  readonly rng: () => number;
  readonly experts: readonly PoolEntry[];
  readonly archive = new Map<string, ScoredCandidate>();
  readonly rounds: RoundSummary[] = [];
  ideal: number[];
  evaluations = 0;
  round = 0;
  stopReason = 'done';
  /** A round has started and not yet ended. */
  roundOpen = false;
  private roundScored = 0;
  private roundNew = 0;
  private idleRounds = 0;
  private proposals = 0;
  private readonly merges = new Map<string, Promise<PoolEntry>>();
  // The store writes of concurrent evaluations, grouped: one round trip per wave, not per candidate.
  // A candidate's record is written once, as SCORED, after its scores (inserts: an update costs
  // FerretDB ~10x an insert). A record already there (another search's, or one an earlier version
  // left EVALUATING) is marked SCORED by one update of the group.
  private readonly candidateInserts = new GroupCommit<CandidateRecord>(async (c) => {
    const created = await this.deps.store.candidates.insertManyIfAbsent(c);
    if (created < c.length)
      await this.deps.store.candidates.updateMany(
        c.map((r) => r.id),
        { state: 'SCORED', updatedAt: new Date(this.now()) },
      );
  });
  private readonly scoreWrites = new GroupCommit<ScoreRecord>((s) => this.deps.store.scores.upsertMany(s));
  private pendingMarks: Promise<void>[] = [];
  private readonly started: number;

  constructor(
    readonly searchId: string,
    readonly spec: SearchSpec,
    readonly deps: SearchDeps,
    readonly base: ModelInfo,
    expertInfos: readonly ModelInfo[],
    readonly preferences: readonly (readonly number[])[],
  ) {
    this.k = spec.objectives.length;
    this.tMax = spec.tMax > 0 ? spec.tMax : base.numLayers;
    this.rng = mulberry32(spec.seed ^ 0x9e3779b9);
    this.experts = expertInfos.map((info, i) => ({
      key: `src:${info.sha256}`,
      label: labelOf(info, i),
      info,
    }));
    this.ideal = new Array<number>(this.k).fill(1);
    this.started = this.now();
  }

  now(): number {
    return (this.deps.now ?? Date.now)();
  }

  get budget(): number {
    return this.spec.budget.maxEvaluations > 0 ? this.spec.budget.maxEvaluations : Number.POSITIVE_INFINITY;
  }

  get remaining(): number {
    return this.budget - this.evaluations;
  }

  /** Why the search must stop now, or undefined. */
  stopCause(): string | undefined {
    if (this.deps.signal?.aborted) return 'cancelled';
    if (this.evaluations >= this.budget) return 'budget';
    const { maxRounds, maxSeconds, maxEvaluations } = this.spec.budget;
    if (maxRounds > 0 && this.round >= maxRounds) return 'rounds';
    if (maxSeconds > 0 && this.now() - this.started >= maxSeconds * 1000) return 'time';
    if (this.idleRounds >= 10) return 'converged';
    // Cached proposals cost nothing; bound them so a converged policy cannot loop forever.
    if (this.proposals > 50 * Math.max(maxEvaluations, 100)) return 'converged';
    return undefined;
  }

  get stopped(): boolean {
    return this.stopCause() !== undefined;
  }

  /** Throws BudgetExhausted when the search must stop (caught by runSearch). */
  checkStop(): void {
    const cause = this.stopCause();
    if (cause !== undefined) {
      this.stopReason = cause;
      throw new BudgetExhausted(cause);
    }
  }

  /** The merged model of a recipe, materialised once. */
  mergeEntry(recipe: SearchRecipe, label: string): Promise<PoolEntry> {
    const id = recipeId(
      recipe,
      this.base,
      this.experts.map((e) => e.info),
    );
    let entry = this.merges.get(id);
    if (!entry) {
      entry = (async () => {
        const { uri } = await this.deps.merge.merge(recipe, id, this.deps.signal);
        const info = await this.deps.catalog.describe({ uri, modelId: id }, `merges.${id}`);
        return { key: `merge:${id}`, label, info, recipe, recipeId: id };
      })();
      entry.catch(() => this.merges.delete(id));
      this.merges.set(id, entry);
    }
    return entry;
  }

  /** The recipe of a preference (or any weights): the upper level's method with w as task weights. */
  recipeFor(
    weights: readonly number[],
    density = this.spec.upper.density,
    lambda = this.spec.upper.lambda,
    method = this.spec.upper.method,
  ): SearchRecipe {
    return {
      method,
      terms: weights.map((weight, expert) => ({ expert, weight: round6(weight), density: round6(density) })),
      lambda: round6(lambda),
      seed: this.spec.seed,
      dtype: this.spec.upper.dtype,
      outDtype: this.spec.upper.outDtype,
    };
  }

  /** Decodes an NSGA-II point [w_1..w_K, d_1..d_K, lambda]. */
  recipeFromVector(x: readonly number[]): SearchRecipe {
    const k = this.experts.length;
    return {
      method: this.spec.upper.method === 'task_arithmetic' ? 'dare_ties' : this.spec.upper.method,
      terms: Array.from({ length: k }, (_, expert) => ({
        expert,
        weight: round6(x[expert]!),
        density: round6(x[k + expert]!),
      })),
      lambda: round6(x[2 * k]!),
      seed: this.spec.seed,
      dtype: this.spec.upper.dtype,
      outDtype: this.spec.upper.outDtype,
    };
  }

  /** The NSGA-II box of [weights, densities, lambda]. */
  upperBox(): { lower: number[]; upper: number[] } {
    const k = this.experts.length;
    const b = this.spec.upper.bounds;
    return {
      lower: [
        ...new Array<number>(k).fill(b.weight[0]),
        ...new Array<number>(k).fill(b.density[0]),
        b.lambda[0],
      ],
      upper: [
        ...new Array<number>(k).fill(b.weight[1]),
        ...new Array<number>(k).fill(b.density[1]),
        b.lambda[1],
      ],
    };
  }

  startRound(planned: number): void {
    this.checkStop();
    this.roundOpen = true;
    this.roundScored = 0;
    this.roundNew = 0;
    this.deps.onEvent?.({ type: 'round.started', round: this.round, planned });
  }

  /**
   * Scores a candidate on the search split: a cache hit costs nothing; a new one costs one evaluation.
   * Throws BudgetExhausted when the search must stop first.
   */
  async score(
    draft: CandidateDraft,
    meta: { origin: CandidateOrigin; preference?: readonly number[] },
  ): Promise<ScoredCandidate> {
    const [scored] = await this.scoreMany([{ draft, meta }]);
    if (scored === undefined) {
      this.checkStop();
      throw new Error('unreachable: a candidate left unscored without a stop');
    }
    return scored;
  }

  /**
   * Scores a round's proposals with up to `deps.concurrency` evaluations in flight. What each
   * proposal costs is decided in proposal order before anything is sent: a candidate in the archive
   * (or earlier in the batch) is a cache hit, one another search scored comes from the store, a new
   * one is evaluated only while the budget (and `limit` new evaluations) allows, so never more
   * evaluations than the budget however many are in flight, and the same proposals make the same
   * decisions on a replay. Results keep proposal order, `undefined` where the budget or a stop left a
   * proposal unscored; the archive and the `candidate.scored` events follow proposal order. When an
   * evaluation fails, nothing new starts, those in flight finish (their scores are kept) and the
   * first error is thrown.
   */
  async scoreMany(
    items: readonly ScoreItem[],
    options: { readonly limit?: number } = {},
  ): Promise<(ScoredCandidate | undefined)[]> {
    this.proposals += items.length;
    const concurrency = Math.max(1, this.deps.concurrency ?? 1);
    const canon = items.map((item) => canonicalise(item.draft));
    const stopped = this.stopCause() !== undefined;
    // Scores other searches already hold, for the candidates new to this search. Trusted only for a
    // candidate a search of this store recorded and scored: scores without that record (an answer to
    // another deployment sharing the topics) would put a candidate on the front that no search stores.
    const fresh = stopped ? [] : [...new Set(canon.map((c) => c.id).filter((id) => !this.archive.has(id)))];
    const known = await this.deps.store.scores.listByCandidates(fresh);
    const storedLists = await mapLimit(fresh, concurrency, async (id) => {
      const scores = known.filter((s) => s.candidateId === id);
      if (scores.length === 0) return scores;
      return (await this.deps.store.candidates.get(id))?.state === 'SCORED' ? scores : [];
    });
    const stored = new Map<string, number[]>();
    fresh.forEach((id, i) => {
      const values = this.spec.objectives.map(
        (o) => storedLists[i]!.find((s) => s.objective === o.name && s.split === 'search')?.value,
      );
      if (values.every((v) => v !== undefined)) stored.set(id, values as number[]);
    });
    type Plan = { kind: 'cached' | 'stored' | 'skip' } | { kind: 'same'; as: number } | { kind: 'evaluate' };
    const first = new Map<string, number>();
    let reserved = 0;
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const plans: Plan[] = canon.map((c, i): Plan => {
      if (this.archive.has(c.id)) return { kind: 'cached' };
      const earlier = first.get(c.id);
      if (earlier !== undefined) return { kind: 'same', as: earlier };
      if (stopped) return { kind: 'skip' };
      if (stored.has(c.id)) {
        first.set(c.id, i);
        return { kind: 'stored' };
      }
      if (this.evaluations + reserved >= this.budget || reserved >= limit) return { kind: 'skip' };
      reserved++;
      first.set(c.id, i);
      return { kind: 'evaluate' };
    });
    const search = new Array<number[] | undefined>(items.length);
    const results = new Array<ScoredCandidate | undefined>(items.length);
    let cursor = 0;
    // Archives and announces every proposal whose result is known, in proposal order.
    const flush = (): void => {
      for (; cursor < items.length; cursor++) {
        const plan = plans[cursor]!;
        const c = canon[cursor]!;
        let scored: ScoredCandidate | undefined;
        let cached = false;
        if (plan.kind === 'cached' || plan.kind === 'same') {
          scored = this.archive.get(c.id);
          cached = true;
        } else if (plan.kind === 'stored' || plan.kind === 'evaluate') {
          const values = plan.kind === 'stored' ? stored.get(c.id) : search[cursor];
          if (values === undefined) return;
          scored = this.toScored(c, items[cursor]!.meta, values);
          this.archive.set(c.id, scored);
        }
        results[cursor] = scored;
        if (scored === undefined) continue;
        this.roundScored++;
        this.deps.onEvent?.({
          type: 'candidate.scored',
          round: this.round,
          candidate: scored,
          cached,
          evaluations: this.evaluations,
        });
      }
    };
    flush();
    const toEvaluate = plans.flatMap((p, i) => (p.kind === 'evaluate' ? [i] : []));
    try {
      await mapLimit(toEvaluate, concurrency, async (i) => {
        // A cancelled search starts no new evaluation; those in flight finish.
        if (this.deps.signal?.aborted) plans[i] = { kind: 'skip' };
        else search[i] = await this.evaluateSearch(canon[i]!);
        flush();
      });
    } catch (error) {
      // Keep what finished: skip the proposals whose evaluation failed or never started.
      for (const i of toEvaluate) if (search[i] === undefined) plans[i] = { kind: 'skip' };
      for (const [i, p] of plans.entries())
        if (p.kind === 'same' && plans[p.as]!.kind === 'skip') plans[i] = { kind: 'skip' };
      flush();
      throw error;
    }
    flush();
    return results;
  }

  /** One new evaluation on the search split, recorded in the store. */
  private async evaluateSearch(c: CanonicalCandidate): Promise<number[]> {
    const result = await this.deps.evaluate.evaluate({
      candidateId: c.id,
      path: resolvePath(c),
      objectives: this.spec.objectives,
      split: 'search',
      ...(this.deps.signal ? { signal: this.deps.signal } : {}),
    });
    checkScores(result.scores, this.k, c.id);
    const search = [...result.scores];
    this.evaluations++;
    this.roundNew++;
    await this.saveScores(c.id, 'search', search, result.examples);
    // The SCORED record is off the evaluation's path (the scores are stored); the search's end waits for it.
    const mark = this.recordCandidate(c, 'SCORED');
    mark.catch(() => undefined);
    this.pendingMarks.push(mark);
    return search;
  }

  private toScored(
    c: CanonicalCandidate,
    meta: { origin: CandidateOrigin; preference?: readonly number[] },
    search: number[],
  ): ScoredCandidate {
    return {
      id: c.id,
      round: this.round,
      origin: meta.origin,
      ...(meta.preference ? { preference: [...meta.preference] } : {}),
      label: describePath(c),
      pool: c.pool.map((p) => ({
        key: p.key,
        label: p.label,
        uri: p.info.uri,
        ...(p.recipeId ? { recipeId: p.recipeId } : {}),
        ...(p.recipe ? { recipe: p.recipe } : {}),
      })),
      steps: c.steps,
      headSource: c.headSource,
      pure: c.pure,
      search,
    };
  }

  private async recordCandidate(c: CanonicalCandidate, state: 'SCORED'): Promise<void> {
    const at = new Date(this.now());
    const merged = c.pool.find((p) => p.recipe);
    await this.candidateInserts.add({
      id: c.id,
      searchId: this.searchId,
      round: this.round,
      ...(merged?.recipe ? { recipe: { ...merged.recipe } as unknown as Record<string, unknown> } : {}),
      ...(c.pure
        ? {}
        : {
            path: {
              pool: c.pool.map((p) => p.key),
              steps: c.steps.map((s) => [s.poolIndex, s.layerIndex]),
              headSource: 0,
            },
          }),
      ...(merged?.recipeId ? { artifactId: merged.recipeId } : {}),
      state,
      createdAt: at,
      updatedAt: at,
    });
  }

  private async saveScores(
    candidateId: string,
    split: 'search' | 'heldout',
    scores: readonly number[],
    examples: readonly number[],
  ): Promise<void> {
    // One record per objective, unique on (candidate, objective, split), with other candidates' records.
    await this.scoreWrites.add(
      ...this.spec.objectives.map((o, k) => ({
        candidateId,
        objective: o.name,
        split,
        searchId: this.searchId,
        value: scores[k]!,
        details: { examples: examples[k] ?? 0 },
        createdAt: new Date(this.now()),
      })),
    );
  }

  /** The current front (non-dominated on the search split). */
  front(): ScoredCandidate[] {
    const all = [...this.archive.values()];
    return frontIndices(all.map((c) => c.search)).map((i) => all[i]!);
  }

  /** Waits for the SCORED marks still being written (the search's end waits for them). */
  async flushMarks(): Promise<void> {
    while (this.pendingMarks.length > 0) {
      const marks = this.pendingMarks;
      this.pendingMarks = [];
      await Promise.all(marks);
    }
  }

  async endRound(): Promise<RoundSummary> {
    const front = this.front();
    const summary: RoundSummary = {
      round: this.round,
      evaluations: this.evaluations,
      candidatesScored: this.roundScored,
      frontSize: front.length,
      hypervolume: frontHypervolume(front.map((c) => c.search)),
    };
    this.rounds.push(summary);
    // Independent records: written at once (the next round waits on them).
    await Promise.all([
      this.deps.store.fronts.upsert({
        searchId: this.searchId,
        round: this.round,
        candidateIds: front.map((c) => c.id),
        hypervolume: summary.hypervolume,
        createdAt: new Date(this.now()),
      }),
      this.deps.store.searches.update(this.searchId, {
        round: this.round + 1,
        updatedAt: new Date(this.now()),
      }),
    ]);
    this.idleRounds = this.roundNew === 0 ? this.idleRounds + 1 : 0;
    this.round++;
    this.roundOpen = false;
    this.deps.onEvent?.({ type: 'round.completed', summary });
    return summary;
  }

  /** Re-scores the front on the held-out split (no budget: the search is over). */
  async scoreHeldout(front: readonly ScoredCandidate[]): Promise<void> {
    let done = 0;
    await mapLimit(front, Math.max(1, this.deps.concurrency ?? 1), async (member) => {
      const c = this.archive.get(member.id)!;
      const result = await this.deps.evaluate.evaluate({
        candidateId: c.id,
        path: { pool: c.pool.map((p) => p.uri), steps: c.steps, headSource: c.headSource },
        objectives: this.spec.objectives,
        split: 'heldout',
      });
      checkScores(result.scores, this.k, c.id);
      c.heldout = [...result.scores];
      if (result.perExample) c.heldoutPerExample = result.perExample.map((r) => [...r]);
      await this.saveScores(c.id, 'heldout', c.heldout, result.examples);
      this.deps.onEvent?.({ type: 'heldout.progress', done: ++done, total: front.length });
    });
  }

  /** Episode reward: sum_k w_k f_k (or -Tchebycheff to z*) minus beta * T. */
  reward(scores: readonly number[], w: readonly number[], length: number): number {
    const rl = this.spec.rl;
    let s = 0;
    if (rl.rewardScalarization === 'weighted-sum') scores.forEach((f, k) => (s += w[k]! * f));
    else s = -Math.max(...scores.map((f, k) => w[k]! * Math.abs(this.ideal[k]! - f)));
    return s - rl.lengthPenalty * length;
  }

  /** Tchebycheff cost of scores under w against z* (the subproblem of a preference; lower is better). */
  subproblemCost(scores: readonly number[], w: readonly number[]): number {
    if (this.spec.scalarization === 'weighted-sum') return -scores.reduce((s, f, k) => s + w[k]! * f, 0);
    return Math.max(...scores.map((f, k) => w[k]! * Math.abs(this.ideal[k]! - f)));
  }

  isBudgetStop(error: unknown): boolean {
    return error instanceof BudgetExhausted;
  }
}

function checkScores(scores: readonly number[], k: number, id: string): void {
  if (scores.length !== k || !scores.every(Number.isFinite))
    throw new Hm3Error(`the evaluator returned ${scores.length} scores (need ${k} finite ones) for ${id}`, {
      status: 'INTERNAL',
      details: { candidateId: id },
    });
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** A small seeded PRNG for the loop's own choices (random baseline paths). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RunSearchOptions {
  /** Id to run under; default: a hash of the spec. */
  readonly searchId?: string;
}

/** Runs a whole search: validate models, run the strategy, re-score the front on held-out. */
export async function runSearch(
  spec: SearchSpec,
  deps: SearchDeps,
  options: RunSearchOptions = {},
): Promise<SearchResult> {
  const { base, experts } = await resolveModels(spec, deps.catalog);
  const preferences = drawPreferences(spec);
  const document = specToDocument(spec);
  const searchId = options.searchId ?? `s-${sha256Hex(canonicalJson(document)).slice(0, 16)}`;
  const ctx = new SearchContext(searchId, spec, deps, base, experts, preferences);
  const at = new Date(ctx.now());
  const existing = await deps.store.searches.get(searchId);
  if (!existing)
    await deps.store.searches.insert({
      id: searchId,
      spec: document,
      state: 'RUNNING',
      round: 0,
      createdAt: at,
      updatedAt: at,
    });
  else await deps.store.searches.update(searchId, { state: 'RUNNING', updatedAt: at });
  deps.onEvent?.({
    type: 'search.started',
    searchId,
    strategy: spec.strategy,
    budget: spec.budget.maxEvaluations,
    preferences: preferences.length,
  });
  const started = ctx.now();
  try {
    await runStrategy(ctx);
  } catch (error) {
    if (!ctx.isBudgetStop(error)) {
      await deps.store.searches.update(searchId, {
        state: 'FAILED',
        error: error instanceof Error ? error.message : String(error),
        updatedAt: new Date(ctx.now()),
      });
      throw error;
    }
    // A round cut short by the budget still counts: record its front.
    if (ctx.roundOpen) await ctx.endRound();
  }
  const front = ctx.front();
  // The front, plus the experts as they are (the references every comparison needs), on held-out.
  const seeds = [...ctx.archive.values()].filter((c) => c.origin === 'seed' && !front.includes(c));
  await ctx.scoreHeldout([...front, ...seeds]);
  await ctx.flushMarks();
  const cancelled = deps.signal?.aborted === true;
  const heldoutPoints = front.map((c) => c.heldout ?? c.search);
  const result: SearchResult = {
    searchId,
    state: cancelled ? 'CANCELLED' : 'SUCCEEDED',
    spec: document,
    strategy: spec.strategy,
    objectives: spec.objectives.map((o) => o.name),
    experts: ctx.experts.map((e) => ({ label: e.label, uri: e.info.uri })),
    base: { uri: base.uri },
    preferences,
    ideal: ctx.ideal,
    evaluations: ctx.evaluations,
    budget: spec.budget.maxEvaluations,
    rounds: ctx.rounds,
    candidates: [...ctx.archive.values()],
    front: front.map((c) => c.id),
    hypervolume: {
      search: frontHypervolume(front.map((c) => c.search)),
      heldout: frontHypervolume(heldoutPoints),
    },
    seconds: (ctx.now() - started) / 1000,
    stopReason: cancelled ? 'cancelled' : ctx.stopReason,
  };
  await deps.store.searches.update(searchId, {
    state: cancelled ? 'CANCELLED' : 'COMPLETED',
    updatedAt: new Date(ctx.now()),
  });
  deps.onEvent?.({ type: 'search.completed', result });
  return result;
}
