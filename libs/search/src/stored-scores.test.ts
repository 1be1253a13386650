/**
 * The front a search stores is the non-dominated set of the candidates it stores, with their stored
 * scores. Scores the store holds for a candidate no search of the store recorded (an answer to a
 * request of another deployment sharing the event topics, recorded by an evaluator replica or the
 * score recorder) are not reused: the candidate is evaluated and recorded by this search.
 */
import { nonDominatedIndices } from '@hm3/moo';
import { createInMemoryStore, type Store } from '@hm3/store';
import { describe, expect, it } from 'vitest';
import { canonicalise, ownPathDraft, type PoolEntry } from './candidate.js';
import type { EvaluatePort, ModelInfo, PolicyPort } from './ports.js';
import { runSearch, type SearchDeps } from './search.js';
import { validateSearchSpec } from './spec.js';

const L = 2;
const OBJECTIVES = ['t0', 't1'];

function info(uri: string): ModelInfo {
  return {
    ref: { uri, modelId: '' },
    uri,
    sha256: `sha-${uri}`,
    architecture: 'LlamaForCausalLM',
    numLayers: L,
    hiddenSize: 8,
  };
}

/** Scores from the head model's name and the path's length: deterministic, with a real trade-off. */
const evaluate: EvaluatePort = {
  evaluate: (request) => {
    const { pool, steps, headSource } = request.path;
    const expert = /expert-(\d)/.exec(pool[headSource] ?? '');
    const k = expert ? Number(expert[1]) : -1;
    const mixed = new Set(steps.map((s) => s.poolIndex)).size / Math.max(1, pool.length);
    const scores = request.objectives.map(
      (_, j) => Math.round((j === k ? 0.8 : 0.2 + 0.5 * mixed) * 1000) / 1000,
    );
    return Promise.resolve({ scores, examples: scores.map(() => 10) });
  },
};

const policy: PolicyPort = {
  create: (spec) => {
    let n = spec.seed;
    let episode = 0;
    return Promise.resolve({
      propose: (prefs) =>
        Promise.resolve(
          prefs.map((preference) => ({
            episode: episode++,
            preference,
            steps: Array.from({ length: spec.tMax }, (_, t) => ({
              poolIndex: n++ % spec.pool.length,
              layerIndex: t,
            })),
          })),
        ),
      learn: () => Promise.resolve(),
      close: () => Promise.resolve(),
    });
  },
};

async function deps(store: Store): Promise<SearchDeps> {
  await store.start();
  return {
    catalog: { describe: (ref) => Promise.resolve(info(ref.uri)) },
    merge: { merge: (_recipe, id) => Promise.resolve({ uri: `merged/${id}` }) },
    evaluate,
    policy,
    store,
  };
}

function spec(budget: number) {
  return validateSearchSpec({
    name: 'stored-scores',
    base: 'base',
    experts: ['expert-0', 'expert-1'],
    objectives: OBJECTIVES.map((name) => ({ name, dataset: `zoo:${name}` })),
    preference_count: 2,
    budget: { max_evaluations: budget },
    rl: { episodes_per_iteration: 2 },
    seed: 5,
  });
}

/** The id of expert i as is (the search's round-0 seeds). */
function seedId(i: number): string {
  const experts: PoolEntry[] = [0, 1].map((j) => ({
    key: `src:sha-expert-${j}`,
    label: `expert-${j}`,
    info: info(`expert-${j}`),
  }));
  return canonicalise(ownPathDraft(experts, i)).id;
}

/** The check of the distributed e2e: the stored front against the stored candidates and their stored scores. */
async function storedFront(store: Store, searchId: string) {
  const candidates = await store.candidates.listBySearch(searchId);
  const points: number[][] = [];
  for (const c of candidates) {
    const scores = (await store.scores.listByCandidate(c.id)).filter((s) => s.split === 'search');
    points.push(OBJECTIVES.map((o) => scores.find((s) => s.objective === o)?.value ?? Number.NaN));
  }
  return {
    candidates,
    nonDominated: nonDominatedIndices(points)
      .map((i) => candidates[i]!.id)
      .sort(),
    front: [...((await store.fronts.latest(searchId))?.candidateIds ?? [])].sort(),
  };
}

describe('the stored front of a search', () => {
  it('is the non-dominated set of its stored candidates, even when the store holds scores no search recorded', async () => {
    const store = createInMemoryStore();
    const d = await deps(store);
    // Another deployment's answer for the same content id (an expert as is), with other scores: recorded
    // in this store by an evaluator replica or the score recorder; no candidate record.
    for (const i of [0, 1])
      for (const objective of OBJECTIVES)
        await store.scores.upsert({
          candidateId: seedId(i),
          objective,
          split: 'search',
          searchId: 'a-search-of-another-deployment',
          value: 1,
          createdAt: new Date(),
        });
    const result = await runSearch(spec(12), d, { searchId: 's-1' });
    const stored = await storedFront(store, 's-1');
    expect(stored.front).toEqual(stored.nonDominated);
    expect(result.evaluations).toBe(12);
    expect(stored.candidates.map((c) => c.id)).toEqual(expect.arrayContaining([seedId(0), seedId(1)]));
    expect(stored.candidates).toHaveLength(12);
    expect(stored.front).toEqual([...result.front].sort());
    // The seeds were evaluated by this search: their stored scores are its own now.
    const seedScores = await store.scores.listByCandidate(seedId(0));
    expect(seedScores.every((s) => s.searchId === 's-1' && s.value !== 1)).toBe(true);
  });

  it('still reuses the scores of a candidate another search of the store recorded and scored (no budget spent)', async () => {
    const store = createInMemoryStore();
    const d = await deps(store);
    await runSearch(spec(6), d, { searchId: 's-1' });
    const again = await runSearch(spec(6), d, { searchId: 's-2' });
    const reused = again.candidates.filter((c) => [seedId(0), seedId(1)].includes(c.id));
    expect(reused).toHaveLength(2);
    // The seeds stay s-1's records and scores; s-2 spent its budget on new candidates.
    expect((await store.candidates.get(seedId(0)))?.searchId).toBe('s-1');
    expect(again.evaluations).toBe(6);
    expect((await store.candidates.listBySearch('s-2')).map((c) => c.id)).not.toContain(seedId(0));
  });
});
