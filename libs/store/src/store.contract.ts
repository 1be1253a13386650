/**
 * THE contract of the Store port, run against every adapter (in-memory-store.test.ts,
 * mongo-store.test.ts). An adapter passes when it behaves exactly like this, errors included.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { DuplicateKeyError } from './errors.js';
import type {
  CandidateRecord,
  FrontRecord,
  ModelRecord,
  PolicyRecord,
  ScoreRecord,
  SearchRecord,
  Store,
} from './ports.js';

export interface StoreUnderTest {
  /** A fresh, empty store, not yet started. */
  store: Store;
  /** Closes the store and removes whatever it created (a test database). */
  dispose(): Promise<void>;
}

const t0 = new Date('2026-11-28T09:00:00.000Z');
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);

export function modelRecord(id: string, overrides: Partial<ModelRecord> = {}): ModelRecord {
  return {
    id,
    uri: `file:///models/${id}`,
    architecture: 'LlamaForCausalLM',
    dtype: 'bf16',
    files: [
      { path: 'model-00001-of-00002.safetensors', sha256: 'a'.repeat(64), bytes: 1_000_000 },
      { path: 'model-00002-of-00002.safetensors', sha256: 'b'.repeat(64), bytes: 512 },
    ],
    config: { hidden_size: 64, num_hidden_layers: 4, rope_theta: 10000.5, tie_word_embeddings: false },
    createdAt: at(0),
    ...overrides,
  };
}

export function searchRecord(id: string, overrides: Partial<SearchRecord> = {}): SearchRecord {
  return {
    id,
    spec: { baseModel: 'base', experts: ['math', 'code'], budget: { evaluations: 40 }, requestedAt: at(-5) },
    state: 'PENDING',
    round: 0,
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

export function candidateRecord(
  id: string,
  searchId: string,
  overrides: Partial<CandidateRecord> = {},
): CandidateRecord {
  return {
    id,
    searchId,
    round: 0,
    recipe: { method: 'dare_ties', weights: [0.25, 0.75], densities: [0.5, 0.5], seed: 7 },
    path: { steps: [{ pool_index: 0, layer_index: 3 }] },
    state: 'PENDING',
    createdAt: at(1),
    updatedAt: at(1),
    ...overrides,
  };
}

export function scoreRecord(
  candidateId: string,
  objective: string,
  split: ScoreRecord['split'],
  overrides: Partial<ScoreRecord> = {},
): ScoreRecord {
  return {
    candidateId,
    objective,
    split,
    searchId: 'search-1',
    value: 0.1 + 0.2,
    details: { examples: 128, seconds: 1.5 },
    createdAt: at(2),
    ...overrides,
  };
}

export function frontRecord(
  searchId: string,
  round: number,
  overrides: Partial<FrontRecord> = {},
): FrontRecord {
  return {
    searchId,
    round,
    candidateIds: [`c-${round}-a`, `c-${round}-b`],
    hypervolume: 0.123456789012345,
    createdAt: at(10 + round),
    ...overrides,
  };
}

export function policyRecord(id: string, overrides: Partial<PolicyRecord> = {}): PolicyRecord {
  return {
    id,
    weightsArtifactId: `weights-${id}`,
    settings: { hidden: 32, lr: 0.0003, conditioned: true },
    iterations: 0,
    createdAt: at(3),
    updatedAt: at(3),
    ...overrides,
  };
}

/** Runs `promise`, expecting a DuplicateKeyError with code 11000 for `collection` and `key`. */
async function expectDuplicate(promise: Promise<unknown>, collection: string, key: Record<string, unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DuplicateKeyError);
  const duplicate = error as DuplicateKeyError;
  expect(duplicate.code).toBe(11000);
  expect(duplicate.status).toBe('ALREADY_EXISTS');
  expect(duplicate.collection).toBe(collection);
  expect(duplicate.key).toEqual(key);
  expect(duplicate.details).toMatchObject({ collection, key, code: 11000 });
}

export function describeStoreContract(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`Store contract [${name}]`, () => {
    let sut: StoreUnderTest;
    let store: Store;

    beforeEach(async () => {
      sut = await factory();
      store = sut.store;
      await store.start();
    });

    afterEach(async () => {
      await sut.dispose();
    });

    describe('models', () => {
      it('insert then get returns the record, Dates as Dates, nested values intact', async () => {
        const model = modelRecord('m1');
        await store.models.insert(model);
        const got = await store.models.get('m1');
        expect(got).toEqual(model);
        expect(got?.createdAt).toBeInstanceOf(Date);
        expect(got?.createdAt.getTime()).toBe(model.createdAt.getTime());
        expect(await store.models.get('absent')).toBeUndefined();
      });

      it('a duplicate id is DuplicateKeyError 11000 and keeps the first record', async () => {
        await store.models.insert(modelRecord('m1'));
        await expectDuplicate(store.models.insert(modelRecord('m1', { uri: 'file:///other' })), 'models', {
          id: 'm1',
        });
        expect((await store.models.get('m1'))?.uri).toBe('file:///models/m1');
      });

      it('upsert creates, then replaces the whole record', async () => {
        await store.models.upsert(modelRecord('m1'));
        const { config: _dropped, ...withoutConfig } = modelRecord('m1', { dtype: 'f16' });
        await store.models.upsert(withoutConfig);
        expect(await store.models.get('m1')).toEqual(withoutConfig);
        expect(await store.models.list()).toHaveLength(1);
      });

      it('list returns every model ordered by id', async () => {
        for (const id of ['m3', 'm1', 'm2']) await store.models.insert(modelRecord(id));
        expect((await store.models.list()).map((m) => m.id)).toEqual(['m1', 'm2', 'm3']);
      });

      it('records are copied in and out: mutating them changes nothing stored', async () => {
        const model = modelRecord('m1');
        await store.models.insert(model);
        model.uri = 'mutated';
        model.files[0]!.sha256 = 'mutated';
        model.createdAt.setTime(0);
        const got = await store.models.get('m1');
        got!.files.push({ path: 'x', sha256: 'x', bytes: 1 });
        (got!.config as Record<string, unknown>).hidden_size = -1;
        const again = await store.models.get('m1');
        expect(again).toEqual(modelRecord('m1'));
        const listed = await store.models.list();
        listed[0]!.architecture = 'mutated';
        expect((await store.models.get('m1'))?.architecture).toBe('LlamaForCausalLM');
      });
    });

    describe('searches', () => {
      it('insert, get and update return the stored record', async () => {
        await store.searches.insert(searchRecord('s1'));
        const updated = await store.searches.update('s1', { state: 'RUNNING', round: 2, updatedAt: at(60) });
        const expected = searchRecord('s1', { state: 'RUNNING', round: 2, updatedAt: at(60) });
        expect(updated).toEqual(expected);
        expect(await store.searches.get('s1')).toEqual(expected);
        expect((await store.searches.get('s1'))?.updatedAt).toBeInstanceOf(Date);
        expect((await store.searches.get('s1'))?.spec.requestedAt).toEqual(at(-5));
      });

      it('update of an absent id returns undefined and creates nothing', async () => {
        expect(await store.searches.update('absent', { state: 'RUNNING' })).toBeUndefined();
        expect(await store.searches.get('absent')).toBeUndefined();
      });

      it('update with an undefined optional field clears it; a required one is refused', async () => {
        await store.searches.insert(searchRecord('s1', { state: 'FAILED', error: 'boom' }));
        const cleared = await store.searches.update('s1', { state: 'RUNNING', error: undefined });
        expect(cleared).toEqual(searchRecord('s1', { state: 'RUNNING' }));
        expect(cleared).not.toHaveProperty('error');
        await expect(store.searches.update('s1', { state: undefined })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        await expect(
          store.searches.update('s1', { id: 'other' } as Partial<Omit<SearchRecord, 'id'>>),
        ).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(
          store.searches.update('s1', { bogus: 1 } as Partial<Omit<SearchRecord, 'id'>>),
        ).rejects.toBeInstanceOf(InvalidArgumentError);
        expect((await store.searches.get('s1'))?.state).toBe('RUNNING');
      });

      it('an empty patch returns the record unchanged', async () => {
        await store.searches.insert(searchRecord('s1'));
        expect(await store.searches.update('s1', {})).toEqual(searchRecord('s1'));
      });

      it('list is ordered by createdAt then id and filters by state', async () => {
        await store.searches.insert(searchRecord('s-b', { createdAt: at(5), state: 'RUNNING' }));
        await store.searches.insert(searchRecord('s-c', { createdAt: at(1) }));
        await store.searches.insert(searchRecord('s-a', { createdAt: at(5), state: 'RUNNING' }));
        await store.searches.insert(searchRecord('s-d', { createdAt: at(9), state: 'COMPLETED' }));
        expect((await store.searches.list()).map((s) => s.id)).toEqual(['s-c', 's-a', 's-b', 's-d']);
        expect((await store.searches.list({ state: 'RUNNING' })).map((s) => s.id)).toEqual(['s-a', 's-b']);
        expect(await store.searches.list({ state: 'CANCELLED' })).toEqual([]);
      });

      it('a duplicate id is DuplicateKeyError 11000', async () => {
        await store.searches.insert(searchRecord('s1'));
        await expectDuplicate(store.searches.insert(searchRecord('s1')), 'searches', { id: 's1' });
      });
    });

    describe('candidates', () => {
      it('insertIfAbsent is true once, then false without overwriting', async () => {
        expect(await store.candidates.insertIfAbsent(candidateRecord('c1', 's1'))).toBe(true);
        expect(await store.candidates.insertIfAbsent(candidateRecord('c1', 's1', { round: 9 }))).toBe(false);
        expect(await store.candidates.get('c1')).toEqual(candidateRecord('c1', 's1'));
      });

      it('concurrent insertIfAbsent of one id: exactly one creates it', async () => {
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            store.candidates.insertIfAbsent(candidateRecord('c1', 's1', { round: i })),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.candidates.listBySearch('s1')).toHaveLength(1);
      });

      it('a duplicate id on insert is DuplicateKeyError 11000', async () => {
        await store.candidates.insert(candidateRecord('c1', 's1'));
        await expectDuplicate(store.candidates.insert(candidateRecord('c1', 's2')), 'candidates', {
          id: 'c1',
        });
      });

      it('update patches top-level fields and clears optional ones', async () => {
        await store.candidates.insert(candidateRecord('c1', 's1'));
        const merged = await store.candidates.update('c1', {
          state: 'MERGED',
          artifactId: 'art-1',
          updatedAt: at(30),
        });
        expect(merged).toEqual(
          candidateRecord('c1', 's1', { state: 'MERGED', artifactId: 'art-1', updatedAt: at(30) }),
        );
        const cleared = await store.candidates.update('c1', { artifactId: undefined, recipe: undefined });
        expect(cleared).not.toHaveProperty('artifactId');
        expect(cleared).not.toHaveProperty('recipe');
        expect(await store.candidates.get('c1')).toEqual(cleared);
        expect(await store.candidates.update('absent', { state: 'FAILED' })).toBeUndefined();
      });

      it('listBySearch returns that search only, ordered by round then id', async () => {
        await store.candidates.insert(candidateRecord('c-z', 's1', { round: 0 }));
        await store.candidates.insert(candidateRecord('c-a', 's1', { round: 1 }));
        await store.candidates.insert(candidateRecord('c-b', 's1', { round: 0 }));
        await store.candidates.insert(candidateRecord('c-x', 's2', { round: 0 }));
        expect((await store.candidates.listBySearch('s1')).map((c) => c.id)).toEqual(['c-b', 'c-z', 'c-a']);
        expect((await store.candidates.listBySearch('s2')).map((c) => c.id)).toEqual(['c-x']);
        expect(await store.candidates.listBySearch('none')).toEqual([]);
      });
    });

    describe('candidates in batches', () => {
      it('insertManyIfAbsent creates the absent ones only and counts them', async () => {
        await store.candidates.insert(candidateRecord('c1', 's1', { round: 7 }));
        const created = await store.candidates.insertManyIfAbsent([
          candidateRecord('c1', 's1'),
          candidateRecord('c2', 's1'),
          candidateRecord('c3', 's1'),
        ]);
        expect(created).toBe(2);
        expect((await store.candidates.get('c1'))?.round).toBe(7);
        expect(await store.candidates.get('c3')).toEqual(candidateRecord('c3', 's1'));
        expect(await store.candidates.insertManyIfAbsent([candidateRecord('c2', 's1')])).toBe(0);
        expect(await store.candidates.insertManyIfAbsent([])).toBe(0);
      });

      it('updateMany patches every listed id and counts the matches', async () => {
        await store.candidates.insertManyIfAbsent([
          candidateRecord('c1', 's1'),
          candidateRecord('c2', 's1'),
          candidateRecord('c3', 's1'),
        ]);
        const n = await store.candidates.updateMany(['c1', 'c3', 'none'], { state: 'SCORED' });
        expect(n).toBe(2);
        expect((await store.candidates.get('c1'))?.state).toBe('SCORED');
        expect((await store.candidates.get('c2'))?.state).toBe(candidateRecord('c2', 's1').state);
        expect((await store.candidates.get('c3'))?.state).toBe('SCORED');
        expect(await store.candidates.updateMany([], { state: 'FAILED' })).toBe(0);
      });

      it('updateMany of many ids (more than one bulk write) patches them all', async () => {
        const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
        expect(await store.candidates.insertManyIfAbsent(ids.map((id) => candidateRecord(id, 's1')))).toBe(
          40,
        );
        expect(await store.candidates.updateMany(ids, { state: 'SCORED' })).toBe(40);
        const states = (await store.candidates.listBySearch('s1')).map((c) => c.state);
        expect(states).toEqual(new Array<string>(40).fill('SCORED'));
      });
    });

    describe('scores', () => {
      it('insert then get by (candidateId, objective, split); a duplicate triple is 11000', async () => {
        const score = scoreRecord('c1', 'gsm8k/accuracy', 'search');
        await store.scores.insert(score);
        expect(await store.scores.get('c1', 'gsm8k/accuracy', 'search')).toEqual(score);
        expect((await store.scores.get('c1', 'gsm8k/accuracy', 'search'))?.value).toBe(0.1 + 0.2);
        expect(await store.scores.get('c1', 'gsm8k/accuracy', 'heldout')).toBeUndefined();
        await expectDuplicate(
          store.scores.insert(scoreRecord('c1', 'gsm8k/accuracy', 'search', { value: 1 })),
          'scores',
          {
            candidateId: 'c1',
            objective: 'gsm8k/accuracy',
            split: 'search',
          },
        );
        // Any one field different is a different key.
        await store.scores.insert(scoreRecord('c1', 'gsm8k/accuracy', 'heldout'));
        await store.scores.insert(scoreRecord('c1', 'humaneval/pass@1', 'search'));
        await store.scores.insert(scoreRecord('c2', 'gsm8k/accuracy', 'search'));
        expect((await store.scores.get('c1', 'gsm8k/accuracy', 'search'))?.value).toBe(0.1 + 0.2);
      });

      it('upsert writes once per key and replaces the value', async () => {
        await store.scores.upsert(scoreRecord('c1', 'o1', 'search', { value: 0.5 }));
        await store.scores.upsert(scoreRecord('c1', 'o1', 'search', { value: 0.5 }));
        await store.scores.upsert(scoreRecord('c1', 'o1', 'search', { value: 0.75, details: undefined }));
        const got = await store.scores.get('c1', 'o1', 'search');
        expect(got?.value).toBe(0.75);
        expect(got).not.toHaveProperty('details');
        expect(await store.scores.listByCandidate('c1')).toHaveLength(1);
      });

      it('concurrent upserts of one new key leave one record', async () => {
        await Promise.all(
          [0.1, 0.2, 0.3, 0.4].map((value) =>
            store.scores.upsert(scoreRecord('c1', 'o1', 'search', { value })),
          ),
        );
        expect(await store.scores.listByCandidate('c1')).toHaveLength(1);
      });

      it('listByCandidate and listBySearch filter and order by the key', async () => {
        await store.scores.insert(scoreRecord('c2', 'o1', 'search', { searchId: 's1' }));
        await store.scores.insert(scoreRecord('c1', 'o2', 'search', { searchId: 's1' }));
        await store.scores.insert(scoreRecord('c1', 'o1', 'search', { searchId: 's1' }));
        await store.scores.insert(scoreRecord('c1', 'o1', 'heldout', { searchId: 's1' }));
        await store.scores.insert(scoreRecord('c3', 'o1', 'search', { searchId: 's2' }));
        const keys = (scores: ScoreRecord[]) =>
          scores.map((s) => `${s.candidateId}/${s.objective}/${s.split}`);
        expect(keys(await store.scores.listByCandidate('c1'))).toEqual([
          'c1/o1/heldout',
          'c1/o1/search',
          'c1/o2/search',
        ]);
        expect(keys(await store.scores.listBySearch('s1'))).toEqual([
          'c1/o1/heldout',
          'c1/o1/search',
          'c1/o2/search',
          'c2/o1/search',
        ]);
        expect(keys(await store.scores.listBySearch('s2'))).toEqual(['c3/o1/search']);
        expect(await store.scores.listByCandidate('none')).toEqual([]);
      });

      it('upsertMany creates the new keys and replaces the present ones, in one call; again is a no-op', async () => {
        await store.scores.insert(scoreRecord('c1', 'o1', 'search', { value: 0.1 }));
        const batch = [
          scoreRecord('c1', 'o1', 'search', { value: 0.9 }),
          scoreRecord('c1', 'o2', 'search', { value: 0.2 }),
          scoreRecord('c2', 'o1', 'search', { value: 0.3 }),
        ];
        await store.scores.upsertMany(batch);
        await store.scores.upsertMany(batch);
        await store.scores.upsertMany([]);
        expect((await store.scores.get('c1', 'o1', 'search'))?.value).toBe(0.9);
        expect((await store.scores.get('c1', 'o2', 'search'))?.value).toBe(0.2);
        expect(await store.scores.listByCandidate('c1')).toHaveLength(2);
        expect(await store.scores.listByCandidate('c2')).toEqual([batch[2]]);
        // All new: the fast path.
        await store.scores.upsertMany([scoreRecord('c3', 'o1', 'search'), scoreRecord('c3', 'o2', 'search')]);
        expect(await store.scores.listByCandidate('c3')).toHaveLength(2);
      });

      it('listByCandidates returns the scores of any listed candidate, ordered by the key', async () => {
        await store.scores.insert(scoreRecord('c2', 'o1', 'search'));
        await store.scores.insert(scoreRecord('c1', 'o2', 'search'));
        await store.scores.insert(scoreRecord('c1', 'o1', 'heldout'));
        await store.scores.insert(scoreRecord('c3', 'o1', 'search'));
        const keys = (scores: ScoreRecord[]) =>
          scores.map((s) => `${s.candidateId}/${s.objective}/${s.split}`);
        expect(keys(await store.scores.listByCandidates(['c2', 'c1', 'none', 'c1']))).toEqual([
          'c1/o1/heldout',
          'c1/o2/search',
          'c2/o1/search',
        ]);
        expect(await store.scores.listByCandidates([])).toEqual([]);
      });
    });

    describe('fronts', () => {
      it('insert once per (searchId, round); a duplicate is 11000', async () => {
        await store.fronts.insert(frontRecord('s1', 0));
        await expectDuplicate(store.fronts.insert(frontRecord('s1', 0, { hypervolume: 1 })), 'fronts', {
          searchId: 's1',
          round: 0,
        });
        await store.fronts.insert(frontRecord('s2', 0));
        await store.fronts.insert(frontRecord('s1', 1));
        expect(await store.fronts.list('s1')).toEqual([frontRecord('s1', 0), frontRecord('s1', 1)]);
      });

      it('upsert is idempotent per (searchId, round) and replaces', async () => {
        await store.fronts.upsert(frontRecord('s1', 3));
        await store.fronts.upsert(frontRecord('s1', 3));
        await store.fronts.upsert(frontRecord('s1', 3, { candidateIds: ['only'], hypervolume: 0.5 }));
        expect(await store.fronts.list('s1')).toEqual([
          frontRecord('s1', 3, { candidateIds: ['only'], hypervolume: 0.5 }),
        ]);
      });

      it('latest is the highest round of that search; list is ordered by round', async () => {
        for (const round of [2, 0, 10, 1]) await store.fronts.upsert(frontRecord('s1', round));
        await store.fronts.upsert(frontRecord('s2', 99));
        expect(await store.fronts.latest('s1')).toEqual(frontRecord('s1', 10));
        expect((await store.fronts.list('s1')).map((f) => f.round)).toEqual([0, 1, 2, 10]);
        expect(await store.fronts.latest('none')).toBeUndefined();
        expect(await store.fronts.list('none')).toEqual([]);
      });
    });

    describe('policies', () => {
      it('insert, get, upsert, list; a duplicate id is 11000', async () => {
        await store.policies.insert(policyRecord('p2'));
        await store.policies.insert(policyRecord('p1'));
        await expectDuplicate(store.policies.insert(policyRecord('p1')), 'policies', { id: 'p1' });
        const trained = policyRecord('p1', {
          iterations: 120,
          weightsArtifactId: 'w-120',
          updatedAt: at(99),
        });
        await store.policies.upsert(trained);
        expect(await store.policies.get('p1')).toEqual(trained);
        await store.policies.upsert(policyRecord('p0'));
        expect((await store.policies.list()).map((p) => p.id)).toEqual(['p0', 'p1', 'p2']);
        expect(await store.policies.get('absent')).toBeUndefined();
      });
    });

    describe('processed events', () => {
      it('mark is true the first time, then false; has follows', async () => {
        expect(await store.processedEvents.has('e1')).toBe(false);
        expect(await store.processedEvents.mark('e1', 'evaluator')).toBe(true);
        expect(await store.processedEvents.has('e1')).toBe(true);
        expect(await store.processedEvents.mark('e1', 'evaluator')).toBe(false);
        expect(await store.processedEvents.mark('e1', 'other-consumer')).toBe(false);
        expect(await store.processedEvents.has('e2')).toBe(false);
      });

      it('the event id is unique: concurrent marks, exactly one true', async () => {
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.processedEvents.mark('e-race', `consumer-${i}`)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });
  });

  describe(`Store contract [${name}] lifecycle`, () => {
    it('an operation before start() is a FailedPreconditionError', async () => {
      const sut = await factory();
      try {
        await expect(sut.store.models.get('m1')).rejects.toBeInstanceOf(FailedPreconditionError);
        await expect(sut.store.processedEvents.mark('e1', 'c')).rejects.toBeInstanceOf(
          FailedPreconditionError,
        );
      } finally {
        await sut.store.start();
        await sut.dispose();
      }
    });

    it('start() is idempotent and keeps data', async () => {
      const sut = await factory();
      try {
        await sut.store.start();
        await sut.store.models.insert(modelRecord('m1'));
        await sut.store.start();
        expect(await sut.store.models.get('m1')).toEqual(modelRecord('m1'));
      } finally {
        await sut.dispose();
      }
    });
  });
}
