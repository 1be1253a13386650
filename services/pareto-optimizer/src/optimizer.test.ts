import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InProcessEventBus } from '@hm3/events';
import { nonDominatedIndices } from '@hm3/moo';
import { common, events, optimizer, policy, TOPICS } from '@hm3/proto';
import { startRlPolicyServer, type RunningRlPolicy } from '@hm3/rl-policy';
import { parseSearchSpecYaml } from '@hm3/search';
import { createClient, loadServiceConfig } from '@hm3/service-kit';
import { createInMemoryStore, LocalArtifactStore, type ArtifactStore, type Store } from '@hm3/store';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderModelCatalog } from './catalog.js';
import { InMemoryJournal } from './journal.js';
import { createOptimizerMetrics } from './metrics.js';
import { ParetoOptimizer, storableCandidate } from './optimizer.js';
import { startParetoOptimizerServer } from './optimizer-server.js';
import { startStubEvaluator, startStubMerger } from './stub-services.js';
import { specToWire } from './wire.js';

const ZOO = fileURLToPath(new URL('../../../tools/fixtures/zoo', import.meta.url));
const OBJECTIVES = ['translate', 'math', 'code'];

const config = (port = 0) =>
  loadServiceConfig({
    env: {
      HM3_HOST: '127.0.0.1',
      HM3_PORT: String(port),
      HM3_ALLOW_UNAUTHENTICATED: 'true',
      HM3_METRICS_PORT: 'off',
      HM3_LOG_LEVEL: 'silent',
    },
    argv: [],
  });

const spec = (budget: number, seed: number) =>
  specToWire(
    parseSearchSpecYaml(
      [
        'base: base',
        'experts: [expert-translate, expert-math, expert-code]',
        'objectives:',
        ...OBJECTIVES.map((t) => `  - { name: ${t}, dataset: "zoo:${t}", max_examples: 4 }`),
        'preference_count: 2',
        `budget: { max_evaluations: ${budget} }`,
        'rl: { episodes_per_iteration: 2, hidden_size: 16 }',
        `seed: ${seed}`,
      ].join('\n'),
    ),
  );

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

let work: string;
let rl: RunningRlPolicy;
let rlStore: Store;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'hm3-optimizer-'));
  rlStore = createInMemoryStore();
  await rlStore.start();
  rl = await startRlPolicyServer({
    config: config(),
    store: rlStore,
    artifactRoot: path.join(work, 'policy'),
  });
});

afterAll(async () => {
  await rl.stop();
  await rlStore.close();
  await rm(work, { recursive: true, force: true });
});

async function world() {
  const bus = new InProcessEventBus();
  await bus.start();
  const store = createInMemoryStore();
  await store.start();
  const journal = new InMemoryJournal();
  const policyClient = createClient(policy.PolicyServiceService, { address: `127.0.0.1:${rl.port}` });
  const make = (
    registry = new Registry(),
    attemptTimeoutMs = 60_000,
    retention?: { artifacts: ArtifactStore; keepRounds: number },
  ) =>
    new ParetoOptimizer({
      store,
      bus,
      journal,
      catalog: new FolderModelCatalog({ modelsRoot: ZOO, artifactRoot: path.join(work, 'artifacts') }),
      policy: policyClient,
      logger: silent,
      metrics: createOptimizerMetrics(registry),
      attemptTimeoutMs,
      ...(retention ? { retention } : {}),
    });
  return { bus, store, journal, policyClient, make };
}

/** Search-split scores of a search, by candidate. */
async function ownScores(store: Store, searchId: string): Promise<Map<string, number[]>> {
  const by = new Map<string, number[]>();
  for (const s of await store.scores.listBySearch(searchId)) {
    if (s.split !== 'search') continue;
    const v = by.get(s.candidateId) ?? [0, 0, 0];
    v[OBJECTIVES.indexOf(s.objective)] = s.value;
    by.set(s.candidateId, v);
  }
  return by;
}

async function expectFrontIsNonDominated(store: Store, searchId: string): Promise<void> {
  const scores = await ownScores(store, searchId);
  const ids = [...scores.keys()];
  const nd = nonDominatedIndices(ids.map((id) => scores.get(id)!)).map((i) => ids[i]!);
  expect([...((await store.fronts.latest(searchId))?.candidateIds ?? [])].sort()).toEqual(nd.sort());
}

async function until(check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ParetoOptimizer over the event bus (in-process), the rl-policy service and the store', () => {
  it('serves a search over gRPC to exactly its budget; the front is the non-dominated set of its stored scores', async () => {
    const { bus, store, policyClient } = await world();
    const evaluator = await startStubEvaluator(bus);
    const merger = await startStubMerger(bus, 'base');
    const journal = new InMemoryJournal();
    const server = await startParetoOptimizerServer({
      config: config(),
      store,
      bus,
      journal,
      modelsRoot: ZOO,
      artifactRoot: path.join(work, 'artifacts'),
      policyService: { address: `127.0.0.1:${rl.port}` },
    });
    const client = createClient(optimizer.ParetoOptimizerServiceService, {
      address: `127.0.0.1:${server.port}`,
    });
    try {
      const { searchId } = await client.startSearch({ spec: spec(14, 1), searchId: 'grpc-1' });
      expect(searchId).toBe('grpc-1');
      // Retrying with the same spec returns the same search; another spec under the id is refused.
      expect((await client.startSearch({ spec: spec(14, 1), searchId: 'grpc-1' })).searchId).toBe('grpc-1');
      await expect(client.startSearch({ spec: spec(15, 1), searchId: 'grpc-1' })).rejects.toThrow(
        /ALREADY_EXISTS|already exists/,
      );
      let last: optimizer.SearchStatus | undefined;
      let rounds = 0;
      for await (const m of client.watchSearch({ searchId })) {
        if (m.event?.$case === 'status') last = m.event.value;
        if (m.event?.$case === 'round') rounds++;
      }
      expect(last?.state).toBe(optimizer.SearchState.SUCCEEDED);
      expect(last?.evaluationsDone).toBe(14);
      expect(rounds).toBeGreaterThan(0);
      expect((await ownScores(store, searchId)).size).toBe(14);
      expect(new Set(evaluator.requests.filter((r) => r.split === 1).map((r) => r.candidateId)).size).toBe(
        14,
      );
      expect(merger.requests.length).toBeGreaterThan(0);
      await expectFrontIsNonDominated(store, searchId);
      const { front } = await client.getFront({ searchId });
      expect(front?.final).toBe(true);
      const { candidate } = await client.recommend({
        searchId,
        preference: { weights: [1, 0, 0] },
        scalarization: 2,
      });
      const best = Math.max(
        ...(front?.members ?? []).map(
          (m) => m.scores.find((s) => s.objective === 'translate' && s.split === 1)!.value,
        ),
      );
      expect(candidate?.scores.find((s) => s.objective === 'translate' && s.split === 1)?.value).toBe(best);
      const { searches } = await client.listSearches({ pageSize: 1, pageToken: '', state: 0 });
      expect(searches.map((s) => s.searchId)).toEqual(['grpc-1']);
      await expect(client.getFront({ searchId: 'nope' })).rejects.toThrow(/NOT_FOUND|no search/);
      const lag = await server.core.lag();
      // Committed on a cadence: some answers may still count as lag.
      expect(lag['hm3-pareto-optimizer']?.[TOPICS.EVAL_COMPLETED]).toBeLessThanOrEqual(14 * 2 + 20);
      const metrics = await server.server.registry.metrics();
      expect(metrics).toMatch(/hm3_consumer_lag\{topic="hm3.eval.requested",group="hm3-evaluator"\} \d+/);
      expect(metrics).toMatch(/hm3_optimizer_evaluations_total\{search_id="grpc-1",split="search"\} 14/);
      expect(metrics).toMatch(/hm3_optimizer_front_size\{search_id="grpc-1"\} [1-9]/);
      expect(metrics).toMatch(/hm3_optimizer_front_hypervolume\{search_id="grpc-1"\} 0\.\d+/);
      expect(metrics).toMatch(/hm3_optimizer_candidates_in_flight\{search_id="grpc-1"\} 0/);
    } finally {
      client.close();
      await server.stop();
      await evaluator.stop();
      await merger.stop();
      await bus.close();
      policyClient.close();
    }
  });

  it('resumes a search after a restart: the replay repeats no evaluation, merge or policy call; exactly the budget', async () => {
    const { bus, store, make, policyClient } = await world();
    const evaluator = await startStubEvaluator(bus);
    const merger = await startStubMerger(bus, 'base');
    const first = make();
    await first.start();
    const searchId = await first.startSearch(spec(20, 2), 'resume-1');
    await until(async () => (await ownScores(store, searchId)).size >= 8);
    // A restart: the first process stops sending and consuming mid-search (the e2e test SIGKILLs it).
    await first.stop();
    expect((await store.searches.get(searchId))?.state).toBe('RUNNING');
    const before = new Set(evaluator.requests.map((r) => r.candidateId));
    const mergesBefore = merger.requests.length;
    const second = make();
    await second.start();
    await until(async () => (await store.searches.get(searchId))?.state === 'COMPLETED');
    await second.settled(searchId);
    expect((await ownScores(store, searchId)).size).toBe(20);
    expect((await store.candidates.listBySearch(searchId)).every((c) => c.state === 'SCORED')).toBe(true);
    // Every candidate was requested once, except at most the one in flight at the crash.
    const search = evaluator.requests.filter((r) => r.split === 1);
    expect(new Set(search.map((r) => r.candidateId)).size).toBe(20);
    expect(search.length - 20).toBeLessThanOrEqual(1);
    const repeated = search.filter((r, i) => search.findIndex((x) => x.candidateId === r.candidateId) !== i);
    for (const r of repeated) expect(before.has(r.candidateId)).toBe(true);
    // Merges of the replayed rounds came from the journal.
    expect(
      merger.requests
        .slice(mergesBefore)
        .every((r) => !merger.requests.slice(0, mergesBefore).some((b) => b.candidateId === r.candidateId)),
    ).toBe(true);
    await expectFrontIsNonDominated(store, searchId);
    await second.stop();
    await evaluator.stop();
    await merger.stop();
    await bus.close();
    policyClient.close();
  });

  it('CancelSearch: no request after the cancel, CANCELLED with the reason, the front still readable', async () => {
    const { bus, store, make, policyClient } = await world();
    const evaluator = await startStubEvaluator(bus);
    const merger = await startStubMerger(bus, 'base');
    const core = make();
    await core.start();
    const searchId = await core.startSearch(spec(200, 3), 'cancel-1');
    await until(
      async () =>
        (await store.fronts.latest(searchId)) !== undefined && (await ownScores(store, searchId)).size >= 10,
    );
    const status = await core.cancel(searchId, 'enough');
    const cancelledAt = Date.now();
    expect([optimizer.SearchState.CANCELLING, optimizer.SearchState.CANCELLED]).toContain(status.state);
    await core.settled(searchId);
    const record = await store.searches.get(searchId);
    expect(record?.state).toBe('CANCELLED');
    expect(record?.error).toBe('enough');
    expect(evaluator.requests.filter((r) => r.at > cancelledAt)).toEqual([]);
    expect(merger.requests.filter((r) => r.at > cancelledAt)).toEqual([]);
    expect((await ownScores(store, searchId)).size).toBeLessThan(200);
    expect((await core.front(searchId)).members.length).toBeGreaterThan(0);
    // Cancelling a finished search changes nothing.
    expect((await core.cancel(searchId, 'again')).state).toBe(optimizer.SearchState.CANCELLED);
    await core.stop();
    await evaluator.stop();
    await merger.stop();
    await bus.close();
    policyClient.close();
  });

  it('retention keeps the front, the last rounds and what open searches use; deletes the other merged checkpoints', async () => {
    const { store, journal, make, policyClient, bus } = await world();
    const artifacts = new LocalArtifactStore(path.join(work, 'artifacts-retention'));
    const at = new Date(0);
    const search = (id: string, state: 'COMPLETED' | 'RUNNING') =>
      store.searches.insert({ id, spec: {}, state, round: 3, createdAt: at, updatedAt: at });
    await search('ret', 'COMPLETED');
    await search('other', 'RUNNING');
    const candidate = (
      id: string,
      searchId: string,
      round: number,
      merged: { artifactId?: string; pool?: string[] },
    ) =>
      store.candidates.insert({
        id,
        searchId,
        round,
        ...(merged.artifactId ? { artifactId: merged.artifactId } : {}),
        ...(merged.pool ? { path: { pool: merged.pool, steps: [], headSource: 0 } } : {}),
        state: 'SCORED',
        createdAt: at,
        updatedAt: at,
      });
    await candidate('c1', 'ret', 0, { artifactId: 'm-1' });
    await candidate('c2', 'ret', 1, { artifactId: 'm-2' });
    await candidate('c3', 'ret', 2, { pool: ['src:x', 'merge:m-3'] });
    await candidate('c5', 'ret', 0, { artifactId: 'm-4' });
    await candidate('c4', 'other', 0, { artifactId: 'm-4' });
    await store.fronts.insert({
      searchId: 'ret',
      round: 2,
      candidateIds: ['c2'],
      hypervolume: 0.1,
      createdAt: at,
    });
    for (const n of [1, 2, 3, 4]) {
      await artifacts.write(`a-${n}`, async () => undefined);
      await journal.put(`ret:merge:m-${n}`, { uri: `artifact://a-${n}` });
    }
    const core = make(new Registry(), 60_000, { artifacts, keepRounds: 1 });
    expect(await core.retain('ret')).toEqual(['a-1']);
    expect((await artifacts.list()).sort()).toEqual(['a-2', 'a-3', 'a-4']);
    await bus.close();
    policyClient.close();
  });

  it('publishes hm3.front.updated when a round changes the front, and the final held-out front last', async () => {
    const { bus, store, make } = await world();
    const evaluator = await startStubEvaluator(bus);
    const merger = await startStubMerger(bus, 'base');
    const updates: events.FrontUpdated[] = [];
    const watch = await bus.subscribe(
      { groupId: 'front-watch', topics: [TOPICS.FRONT_UPDATED] },
      async (e) => {
        const envelope = events.Envelope.decode(e.value);
        if (envelope.payload?.$case === 'frontUpdated') updates.push(envelope.payload.value);
      },
    );
    const core = make();
    await core.start();
    try {
      await core.startSearch(spec(16, 4), 'front-events');
      await core.settled('front-events');
      await until(() => updates.some((u) => u.final));
      const stored = await store.fronts.list('front-events');
      const rounds = updates.filter((u) => !u.final);
      expect(rounds.length).toBeGreaterThan(0);
      // Each is the stored front of its round, and consecutive ones differ.
      for (const u of rounds) {
        const front = stored.find((f) => f.round === u.round);
        expect(u.members.map((m) => m.candidateId)).toEqual(front?.candidateIds);
        expect(u.hypervolume).toBeCloseTo(front!.hypervolume, 12);
        expect(
          u.members.every((m) => m.scores.length === 3 && m.scores[0]!.split === common.Split.SEARCH),
        ).toBe(true);
      }
      for (let i = 1; i < rounds.length; i++)
        expect(rounds[i]!.members.map((m) => m.candidateId)).not.toEqual(
          rounds[i - 1]!.members.map((m) => m.candidateId),
        );
      const final = updates.at(-1)!;
      expect(final.final).toBe(true);
      expect(final.split).toBe(common.Split.HELDOUT);
      expect(final.members.map((m) => m.candidateId)).toEqual(
        (await store.fronts.latest('front-events'))?.candidateIds,
      );
      expect(updates.filter((u) => u.final)).toHaveLength(1);
    } finally {
      await watch.stop();
      await core.stop();
      await evaluator.stop();
      await merger.stop();
      await bus.close();
    }
  });

  it('a poison answer is dead-lettered with its reason; the consumer goes on', async () => {
    const { bus, make, policyClient } = await world();
    const core = make();
    await core.start();
    const dead: Record<string, string>[] = [];
    await bus.subscribe({ groupId: 'dead-reader', topics: ['hm3.dead-letter'] }, (e) => {
      dead.push(e.headers);
      return Promise.resolve();
    });
    await bus.publish(TOPICS.EVAL_COMPLETED, [
      { key: 'poison', value: new Uint8Array([0xff, 0xff, 0xff, 0x07, 0x01]) },
    ]);
    await until(() => dead.length > 0, 20_000);
    expect(dead[0]?.['hm3-dead-letter-reason']).toMatch(/./);
    expect(dead[0]?.['hm3-dead-letter-source-topic']).toBe(TOPICS.EVAL_COMPLETED);
    await core.stop();
    await bus.close();
    policyClient.close();
  });

  it('stores path steps as objects (FerretDB keeps no nested arrays)', () => {
    const at = new Date(0);
    const c = storableCandidate({
      id: 'c',
      searchId: 's',
      round: 0,
      path: { pool: ['a'], steps: [[0, 1]], headSource: 0 },
      state: 'EVALUATING',
      createdAt: at,
      updatedAt: at,
    });
    expect(c.path?.['steps']).toEqual([{ pool: 0, layer: 1 }]);
  });
});
