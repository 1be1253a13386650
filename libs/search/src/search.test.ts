import { NotFoundError } from '@hm3/errors';
import { createInMemoryStore } from '@hm3/store';
import { describe, expect, it } from 'vitest';
import { canonicalise, ownPathDraft, type PoolEntry } from './candidate.js';
import type {
  EvaluatePort,
  EvaluationRequest,
  MergePort,
  ModelCatalogPort,
  ModelInfo,
  PathPolicyHandle,
  PolicyCreateSpec,
  PolicyPort,
  SearchRecipe,
} from './ports.js';
import { frontMembers, pairedBootstrap, recommend } from './recommend.js';
import { frontIndices, runSearch, type SearchDeps, type SearchEvent } from './search.js';
import { validateSearchSpec, type StrategyName } from './spec.js';

const L = 4;

/** Fast doubles: 3 experts each good at one task; merges blend them; paths mix by layer provenance. */
class Doubles {
  evaluated: EvaluationRequest[] = [];
  merges: SearchRecipe[] = [];
  policies: PolicyCreateSpec[] = [];
  learned = 0;
  recipes = new Map<string, SearchRecipe>();

  info(uri: string, architecture = 'LlamaForCausalLM', layers = L): ModelInfo {
    return {
      ref: { uri, modelId: '' },
      uri,
      sha256: `sha-${uri}`,
      architecture,
      numLayers: layers,
      hiddenSize: 8,
    };
  }

  catalog: ModelCatalogPort = {
    describe: async (ref, field) => {
      if (ref.uri.startsWith('missing'))
        throw new NotFoundError(`${field}: no model at ${ref.uri}`, { field });
      if (ref.uri.startsWith('gpt2')) return this.info(ref.uri, 'GPT2LMHeadModel');
      return this.info(ref.uri);
    },
  };

  merge: MergePort = {
    merge: async (recipe, id) => {
      this.merges.push(recipe);
      this.recipes.set(`merged/${id}`, recipe);
      return { uri: `merged/${id}` };
    },
  };

  /** Score of one model on task k: an expert is 0.9 on its task, 0.1 elsewhere; a merge blends by weight. */
  private modelScore(uri: string, k: number): number {
    const m = /^expert-(\d)$/.exec(uri);
    if (m) return Number(m[1]) === k ? 0.9 : 0.1;
    const recipe = this.recipes.get(uri);
    if (!recipe) return 0;
    const total = recipe.terms.reduce((s, t) => s + t.weight, 0) || 1;
    const share = (recipe.terms.find((t) => t.expert === k)?.weight ?? 0) / total;
    return 0.15 + 0.6 * share * Math.min(1, recipe.lambda);
  }

  evaluate: EvaluatePort = {
    evaluate: async (request) => {
      this.evaluated.push(request);
      const { pool, steps, headSource } = request.path;
      const scores = request.objectives.map((_, k) => {
        let s = 0.2 * this.modelScore(pool[headSource]!, k);
        for (const step of steps)
          s +=
            (0.8 / steps.length) *
            this.modelScore(pool[step.poolIndex]!, k) *
            (step.layerIndex === steps.indexOf(step) ? 1 : 0.8);
        return Math.round(s * 1000) / 1000;
      });
      const perExample = scores.map((s) => Array.from({ length: 20 }, (_, i) => (i < s * 20 ? 1 : 0)));
      return { scores, examples: scores.map(() => 20), perExample };
    },
  };

  policy: PolicyPort = {
    create: async (spec) => {
      this.policies.push(spec);
      let state = spec.seed + 7;
      const rand = () => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return state / 2147483648;
      };
      let episode = 0;
      const handle: PathPolicyHandle = {
        propose: async (prefs) =>
          prefs.map((preference) => ({
            episode: episode++,
            preference,
            steps: Array.from({ length: spec.tMax }, (_, t) => ({
              poolIndex: Math.floor(rand() * spec.pool.length),
              layerIndex: rand() < 0.7 ? t % L : Math.floor(rand() * L),
            })),
          })),
        learn: async (episodes, rewards) => {
          expect(episodes.length).toBe(rewards.length);
          rewards.forEach((r) => expect(Number.isFinite(r)).toBe(true));
          this.learned++;
        },
        close: async () => {},
      };
      return handle;
    },
  };

  async deps(events?: SearchEvent[]): Promise<SearchDeps> {
    const store = createInMemoryStore();
    await store.start();
    return {
      catalog: this.catalog,
      merge: this.merge,
      evaluate: this.evaluate,
      policy: this.policy,
      store,
      ...(events ? { onEvent: (e: SearchEvent) => events.push(e) } : {}),
    };
  }
}

function spec(overrides: Record<string, unknown> = {}) {
  return validateSearchSpec({
    name: 'test',
    base: 'base',
    experts: ['expert-0', 'expert-1', 'expert-2'],
    objectives: ['t0', 't1', 't2'].map((name) => ({ name, dataset: `zoo:${name}` })),
    preference_count: 3,
    budget: { max_evaluations: 60 },
    rl: { episodes_per_iteration: 4 },
    seed: 3,
    ...overrides,
  });
}

describe('runSearch', () => {
  it('hm3: stays within the budget, never scores a candidate twice, archives every scored candidate', async () => {
    const d = new Doubles();
    const events: SearchEvent[] = [];
    const result = await runSearch(spec(), await d.deps(events));
    const searchCalls = d.evaluated.filter((r) => r.split === 'search');
    expect(result.evaluations).toBe(60);
    expect(searchCalls).toHaveLength(60);
    expect(new Set(searchCalls.map((r) => r.candidateId)).size).toBe(60);
    expect(result.candidates).toHaveLength(60);
    // round 0: the three experts as they are, then one merge per preference with w as the task weights
    const seeds = result.candidates.filter((c) => c.origin === 'seed');
    expect(seeds.map((c) => c.label)).toEqual(['expert-0', 'expert-1', 'expert-2']);
    expect(seeds.every((c) => c.pure)).toBe(true);
    expect(d.merges).toHaveLength(3);
    d.merges.forEach((m, i) => {
      expect(m.method).toBe('dare_ties');
      expect(m.terms.map((t) => t.weight)).toEqual(
        result.preferences[i]!.map((x) => Math.round(x * 1e6) / 1e6),
      );
      expect(m.terms.every((t) => t.density === 0.5)).toBe(true);
    });
    // one policy per preference over {experts, merged(w)}; paths take their head from the merged model
    expect(d.policies).toHaveLength(3);
    expect(d.policies.every((p) => p.pool.length === 4 && !p.amortized)).toBe(true);
    expect(d.learned).toBeGreaterThan(0);
    const policyPaths = result.candidates.filter((c) => c.origin === 'policy' || c.origin === 'mutation');
    expect(result.candidates.filter((c) => c.origin === 'policy').length).toBeGreaterThan(0);
    expect(result.candidates.filter((c) => c.origin === 'mutation').length).toBeGreaterThan(0);
    // the lower level starts from every pool model's own path under the merged head
    expect(result.candidates.filter((c) => c.origin === 'start').length).toBe(3 * 3);
    for (const c of policyPaths) expect(c.pool[0]!.recipeId).toBeDefined();
    // ideal z* = the experts' best scores
    expect(result.ideal).toEqual([0.9, 0.9, 0.9]);
    // the front: non-dominated on search, re-scored on held-out, hypervolume per round non-decreasing
    const front = frontMembers(result);
    expect(frontIndices(front.map((c) => c.search))).toHaveLength(front.length);
    for (const c of result.candidates) {
      if (result.front.includes(c.id)) continue;
      expect(front.some((f) => f.search.every((v, k) => v >= c.search[k]!))).toBe(true);
    }
    expect(front.every((c) => c.heldout?.length === 3)).toBe(true);
    // held-out: the front and the experts as they are
    const heldoutIds = new Set(d.evaluated.filter((r) => r.split === 'heldout').map((r) => r.candidateId));
    expect(heldoutIds).toEqual(new Set([...result.front, ...seeds.map((c) => c.id)]));
    const hv = result.rounds.map((r) => r.hypervolume);
    hv.slice(1).forEach((v, i) => expect(v).toBeGreaterThanOrEqual(hv[i]! - 1e-12));
    expect(result.hypervolume.search).toBeCloseTo(hv.at(-1)!, 12);
    expect(events.filter((e) => e.type === 'round.completed')).toHaveLength(result.rounds.length);
    expect(result.stopReason).toBe('budget');
  });

  it('is deterministic: the same spec and seed give the same candidates', async () => {
    const a = await runSearch(spec(), await new Doubles().deps());
    const b = await runSearch(spec(), await new Doubles().deps());
    expect(b.candidates.map((c) => c.id)).toEqual(a.candidates.map((c) => c.id));
    expect(b.front).toEqual(a.front);
  });

  it('hm3-amortized: one preference-conditioned policy for every preference', async () => {
    const d = new Doubles();
    const result = await runSearch(spec({ strategy: 'hm3-amortized' }), await d.deps());
    expect(d.policies).toHaveLength(1);
    expect(d.policies[0]!.amortized).toBe(true);
    expect(result.evaluations).toBe(60);
    const prefs = new Set(
      result.candidates.filter((c) => c.origin === 'policy').map((c) => c.preference!.join(',')),
    );
    expect(prefs.size).toBeGreaterThan(1);
  });

  it('hm3 with the NSGA-II upper level spends its budget share on merges, then runs the policies', async () => {
    const d = new Doubles();
    const result = await runSearch(
      spec({ upper: { optimizer: 'nsga2', population: 4, budget_share: 0.3 } }),
      await d.deps(),
    );
    expect(result.evaluations).toBe(60);
    expect(result.candidates.filter((c) => c.origin === 'upper').length).toBeGreaterThanOrEqual(4);
    expect(d.policies).toHaveLength(3);
  });

  it.each<[StrategyName, number]>([
    ['param-only', 0],
    ['arch-only', 3],
    ['random', 3],
  ])('%s: the same budget, its own space', async (strategy, seeds) => {
    const d = new Doubles();
    const result = await runSearch(spec({ strategy }), await d.deps());
    expect(result.evaluations).toBe(60);
    expect(result.candidates.filter((c) => c.origin === 'seed')).toHaveLength(seeds);
    if (strategy === 'arch-only') {
      expect(d.merges).toHaveLength(0);
      expect(d.policies.every((p) => p.pool.length === 3)).toBe(true);
    }
    if (strategy === 'param-only') {
      expect(d.policies).toHaveLength(0);
      expect(result.candidates.every((c) => c.pure && c.pool[0]!.recipe !== undefined)).toBe(true);
      const lambdas = new Set(d.merges.map((m) => m.lambda));
      expect(lambdas.size).toBeGreaterThan(1);
    }
  });

  it.each(['task_arithmetic', 'ties', 'dare_ties'] as const)(
    'single method %s: weights 1/K, one candidate',
    async (method) => {
      const d = new Doubles();
      const result = await runSearch(spec({ strategy: method }), await d.deps());
      expect(result.evaluations).toBe(1);
      expect(d.merges).toHaveLength(1);
      expect(d.merges[0]!.method).toBe(method);
      expect(d.merges[0]!.terms.map((t) => t.weight)).toEqual([0.333333, 0.333333, 0.333333]);
      expect(d.merges[0]!.terms[0]!.density).toBe(method === 'task_arithmetic' ? 1 : 0.5);
      expect(result.front).toHaveLength(1);
    },
  );

  it('stops on max_rounds when no evaluation limit is set', async () => {
    const d = new Doubles();
    const result = await runSearch(spec({ budget: { max_rounds: 3 } }), await d.deps());
    expect(result.rounds).toHaveLength(3);
    expect(result.stopReason).toBe('rounds');
  });

  it('reuses scores already in the store (a resumed search evaluates nothing twice)', async () => {
    const d = new Doubles();
    const deps = await d.deps();
    const first = await runSearch(spec({ budget: { max_evaluations: 10 } }), deps);
    const before = d.evaluated.filter((r) => r.split === 'search').length;
    const again = await runSearch(spec({ budget: { max_evaluations: 10 } }), { ...deps });
    expect(d.evaluated.filter((r) => r.split === 'search').length).toBe(before + again.evaluations);
    expect(again.candidates.slice(0, 6).map((c) => c.id)).toEqual(
      first.candidates.slice(0, 6).map((c) => c.id),
    );
    expect(again.evaluations).toBeLessThan(10 + 1);
  });

  it('writes each evaluated candidate once, as SCORED (no update); a record left EVALUATING is marked SCORED', async () => {
    const counted = async () => {
      const deps = await new Doubles().deps();
      const updates: string[][] = [];
      const candidates = deps.store.candidates;
      const counting = new Proxy(candidates, {
        get: (obj, prop) =>
          prop === 'updateMany'
            ? (ids: readonly string[], patch: Parameters<typeof candidates.updateMany>[1]) => {
                updates.push([...ids]);
                return candidates.updateMany(ids, patch);
              }
            : (Reflect.get(obj, prop) as unknown),
      });
      const store = new Proxy(deps.store, {
        get: (obj, prop) => (prop === 'candidates' ? counting : (Reflect.get(obj, prop) as unknown)),
      });
      return { deps: { ...deps, store }, updates, candidates };
    };
    const a = await counted();
    const first = await runSearch(spec({ budget: { max_evaluations: 10 } }), a.deps, { searchId: 's-a' });
    expect(a.updates).toEqual([]);
    const records = await a.candidates.listBySearch('s-a');
    expect(records.map((r) => r.id).sort()).toEqual(first.candidates.map((c) => c.id).sort());
    expect(records.every((r) => r.state === 'SCORED')).toBe(true);

    const b = await counted();
    const left = first.candidates[0]!.id;
    const at = new Date(0);
    await b.candidates.insert({
      id: left,
      searchId: 'other',
      round: 0,
      state: 'EVALUATING',
      createdAt: at,
      updatedAt: at,
    });
    await runSearch(spec({ budget: { max_evaluations: 10 } }), b.deps, { searchId: 's-b' });
    expect(b.updates).toHaveLength(1);
    expect(b.updates[0]).toContain(left);
    expect((await b.candidates.get(left))?.state).toBe('SCORED');
    expect((await b.candidates.listBySearch('s-b')).every((r) => r.state === 'SCORED')).toBe(true);
  });

  it('refuses experts of another architecture, naming the field, before anything runs', async () => {
    const d = new Doubles();
    await expect(
      runSearch(spec({ experts: ['expert-0', 'gpt2-x', 'expert-2'] }), await d.deps()),
    ).rejects.toMatchObject({ status: 'FAILED_PRECONDITION', details: { field: 'experts[1]' } });
    expect(d.evaluated).toHaveLength(0);
    expect(d.merges).toHaveLength(0);
  });

  it('refuses a missing model with its field', async () => {
    const d = new Doubles();
    await expect(
      runSearch(spec({ experts: ['expert-0', 'expert-1', 'missing-2'] }), await d.deps()),
    ).rejects.toMatchObject({
      status: 'NOT_FOUND',
      details: { field: 'experts[2]' },
    });
    expect(d.evaluated).toHaveLength(0);
  });

  it('cancel: stops new work, keeps the front so far', async () => {
    const d = new Doubles();
    const controller = new AbortController();
    const deps = await d.deps();
    const result = await runSearch(spec({ budget: { max_evaluations: 100 } }), {
      ...deps,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'candidate.scored' && e.evaluations === 7) controller.abort();
      },
    });
    expect(result.state).toBe('CANCELLED');
    expect(result.evaluations).toBe(7);
    expect(result.front.length).toBeGreaterThan(0);
  });

  it.each(['hm3', 'random', 'param-only', 'arch-only'] as const)(
    '%s with 8 evaluations in flight: exactly the budget, the same result as one at a time',
    async (strategy) => {
      const run = async (concurrency: number) => {
        const d = new Doubles();
        let inFlight = 0;
        let peak = 0;
        const evaluate = d.evaluate.evaluate;
        d.evaluate = {
          evaluate: async (request) => {
            peak = Math.max(peak, ++inFlight);
            // Answers out of order: later requests of a batch may finish first.
            for (let i = 0; i < (request.candidateId.charCodeAt(5) % 4) + 1; i++)
              await new Promise<void>((resolve) => setImmediate(resolve));
            inFlight--;
            return evaluate(request);
          },
        };
        const deps = { ...(await d.deps()), concurrency };
        const result = await runSearch(spec({ strategy, budget: { max_evaluations: 37 } }), deps);
        const stored = await deps.store.scores.listBySearch(result.searchId);
        return { d, peak, result, stored };
      };
      const one = await run(1);
      const many = await run(8);
      expect(one.peak).toBe(1);
      expect(many.peak).toBeGreaterThan(1);
      expect(many.peak).toBeLessThanOrEqual(8);
      for (const { d, result, stored } of [one, many]) {
        const searchCalls = d.evaluated.filter((r) => r.split === 'search');
        expect(result.evaluations).toBe(37);
        expect(searchCalls).toHaveLength(37);
        expect(new Set(searchCalls.map((r) => r.candidateId)).size).toBe(37);
        expect(stored.filter((s) => s.split === 'search')).toHaveLength(37 * 3);
      }
      expect(many.result.candidates.map((c) => c.id)).toEqual(one.result.candidates.map((c) => c.id));
      expect(many.result.front).toEqual(one.result.front);
      expect(many.result.rounds).toEqual(one.result.rounds);
    },
  );
});

describe('candidates', () => {
  it('a merged model proposed as a path over {experts, merged} is the merged model itself', () => {
    const d = new Doubles();
    const experts: PoolEntry[] = [0, 1].map((i) => ({
      key: `src:${i}`,
      label: `e${i}`,
      info: d.info(`expert-${i}`),
    }));
    const merged: PoolEntry = { key: 'merge:m1', label: 'm', info: d.info('merged/m1') };
    const pool = [...experts, merged];
    const viaPool = canonicalise(ownPathDraft(pool, 2));
    const alone = canonicalise(ownPathDraft([merged], 0));
    expect(viaPool.id).toBe(alone.id);
    expect(viaPool.pure).toBe(true);
    const mixed = canonicalise({
      pool,
      steps: [0, 1, 2, 3].map((l) => ({ poolIndex: l % 2, layerIndex: l })),
      headSource: 2,
    });
    expect(mixed.pure).toBe(false);
    expect(mixed.pool.map((p) => p.key)).toEqual(['merge:m1', 'src:0', 'src:1']);
    // the same path over a reordered pool is the same candidate
    const reordered = canonicalise({
      pool: [merged, experts[1]!, experts[0]!],
      steps: [0, 1, 2, 3].map((l) => ({ poolIndex: l % 2 === 0 ? 2 : 1, layerIndex: l })),
      headSource: 0,
    });
    expect(reordered.id).toBe(mixed.id);
  });
});

describe('recommend and the paired bootstrap', () => {
  it('recommends the member that fits the preference', async () => {
    const result = await runSearch(spec(), await new Doubles().deps());
    const pick = recommend(result, [1, 0, 0]);
    const best0 = Math.max(...frontMembers(result).map((c) => c.search[0]!));
    expect(pick.candidate.search[0]).toBe(best0);
    const uniform = recommend(result, [1 / 3, 1 / 3, 1 / 3]);
    const bestMean = Math.max(...frontMembers(result).map((c) => c.search.reduce((a, b) => a + b, 0) / 3));
    expect(uniform.value).toBeCloseTo(bestMean, 12);
    const balanced = recommend(result, [1 / 3, 1 / 3, 1 / 3], 'tchebycheff');
    expect(frontMembers(result).map((c) => c.id)).toContain(balanced.candidate.id);
    expect(() => recommend(result, [1, 0])).toThrow(/preference/);
  });

  it('brackets the true difference and is paired', () => {
    const a = [Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 1 : 0))];
    const b = [a[0]!.map((x, i) => (i % 10 === 0 ? 0 : x))];
    const ci = pairedBootstrap(a, b, { samples: 500, seed: 2 });
    expect(ci.mean).toBeCloseTo(0.1, 10);
    expect(ci.lower).toBeGreaterThan(0);
    expect(ci.upper).toBeGreaterThan(ci.lower);
    const same = pairedBootstrap(a, a, { samples: 200 });
    expect([same.lower, same.upper]).toEqual([0, 0]);
  });
});
