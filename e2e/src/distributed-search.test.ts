/**
 * The distributed search end to end: Kafka and FerretDB from tools/infra, the four services as
 * processes (`hm3 serve <service>`), a gRPC client running searches on the fixture zoo. Each test
 * gets its own services and its own database, so every check reads one search alone.
 */
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEAD_LETTER_HEADERS } from '@hm3/events';
import { events, optimizer, TOPIC_NAMES, TOPICS } from '@hm3/proto';
import { createMongoStore, type Store } from '@hm3/store';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, HM3_BIN } from './services.js';
import {
  isTerminal,
  optimizerClient,
  storedSearch,
  waitFor,
  zooSpec,
  zooSpecYaml,
  type OptimizerClient,
} from './search-client.js';

const brokers = (): string => process.env['HM3_KAFKA_BROKERS'] ?? '127.0.0.1:9092';
const mongoUrl = (): string => process.env['HM3_MONGO_URL'] ?? 'mongodb://127.0.0.1:27017';

let work: string;
/**
 * Seeds differ per run: merged checkpoints (and the paths over them) then get new content ids, so
 * answers left on the topics by earlier runs cannot stand in for this run's evaluations.
 */
const RUN_SEED = 1000 + Math.floor(Math.random() * 1_000_000);

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'hm3-e2e-'));
});

afterAll(async () => {
  await current?.stopAll();
  // HM3_E2E_KEEP=1 keeps the services' logs and artifacts for a look after a failure.
  if (process.env['HM3_E2E_KEEP'] !== '1') await rm(work, { recursive: true, force: true });
  else console.log(`e2e work folder kept: ${work}`);
});

interface Scenario {
  readonly cluster: Cluster;
  readonly store: Store;
  client(): OptimizerClient;
}

/**
 * Moves the services' consumer groups to the end of their topics (no member runs between scenarios),
 * so a scenario's services do not work through events of earlier runs, benchmarks or other
 * scenarios: the evaluator's score recorder would copy their scores into this scenario's database.
 */
async function startGroupsAtHead(): Promise<void> {
  const admin = kafkaClient('hm3-e2e-admin').admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const groups: [string, string[]][] = [
      ['hm3-evaluator', [TOPICS.EVAL_REQUESTED]],
      ['hm3-evaluator-scores', [TOPICS.EVAL_COMPLETED]],
      ['hm3-tensor-merge', [TOPICS.MERGE_REQUESTED]],
      [
        'hm3-pareto-optimizer',
        [TOPICS.MERGE_COMPLETED, TOPICS.MERGE_FAILED, TOPICS.EVAL_COMPLETED, TOPICS.EVAL_FAILED],
      ],
    ];
    for (const [groupId, topics] of groups)
      for (const topic of topics) {
        if (!existing.has(topic)) continue;
        // The end offsets themselves: resetOffsets({ earliest: false }) commits -1, which a consumer
        // that subscribes from the beginning (every idempotent consumer) reads as "from the beginning".
        const ends = await admin.fetchTopicOffsets(topic);
        await admin
          .setOffsets({
            groupId,
            topic,
            partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })),
          })
          .catch((error: unknown) => {
            // Refused while a member of the group runs elsewhere: then this scenario shares its events.
            throw new Error(`could not move ${groupId} to the end of ${topic}: ${String(error)}`);
          });
      }
  } finally {
    await admin.disconnect();
  }
}

/** The services of the scenario running now (a timed-out test leaves its own running). */
let current: Cluster | undefined;

/**
 * Starts the four services on a fresh database, runs `body`, stops everything. Two scenarios never
 * overlap: their services share the topics and consumer groups, so the previous one is stopped first.
 */
async function scenario(name: string, body: (s: Scenario) => Promise<void>): Promise<void> {
  await current?.stopAll();
  await startGroupsAtHead();
  const database = `hm3_e2e_${name}_${randomUUID().slice(0, 8)}`;
  const cluster = new Cluster({
    // The scenario's own logs and artifacts: the checks on log lines read this scenario's alone.
    work: path.join(work, name),
    kafkaBrokers: brokers(),
    mongoUrl: mongoUrl(),
    database,
    // A request not answered in 45 s is sent again (the evaluator's consumer group may take a
    // session timeout to hand a killed member's partition over).
    env: { HM3_ATTEMPT_TIMEOUT_MS: '45000' },
  });
  current = cluster;
  const store = createMongoStore({ url: mongoUrl(), database });
  await store.start();
  let client: OptimizerClient | undefined;
  try {
    await cluster.startAll();
    await body({
      cluster,
      store,
      client: () => (client ??= optimizerClient(cluster.optimizerAddress)),
    });
  } finally {
    client?.close();
    await cluster.stopAll();
    await store.close();
  }
}

/**
 * Exactly the budget: every candidate scored once on every objective, none duplicated (unique keys,
 * counts checked, and the evaluator computed no score twice), the front = the non-dominated set.
 */
async function expectExactBudget(
  cluster: Cluster,
  store: Store,
  searchId: string,
  budget: number,
): Promise<void> {
  const stored = await storedSearch(store, searchId);
  expect(stored.scored.size).toBe(budget);
  expect(stored.scoreDocuments).toBe(budget * 3);
  expect(stored.scoreKeys).toBe(stored.scoreDocuments);
  for (const objectives of stored.scored.values()) expect(objectives.size).toBe(3);
  expect(stored.candidates).toBe(budget);
  expect(stored.candidateIds).toBe(stored.candidates);
  expect(stored.candidatesNotScored).toEqual([]);
  expect(stored.front.length).toBeGreaterThan(0);
  expect(stored.front).toEqual(stored.nonDominated);
  // No score computed twice: the evaluator computed (not answered from the store) one score per stored
  // document of the search (search split, and the held-out re-scoring of the front and the experts);
  // a SIGKILL between storing a score and logging it can hide one request's scores, never add any.
  const heldout = (await store.scores.listBySearch(searchId)).filter((s) => s.split === 'heldout').length;
  expect(heldout).toBeGreaterThan(0);
  const fresh = await freshScores(cluster, searchId);
  expect(fresh).toBeLessThanOrEqual(budget * 3 + heldout);
  expect(fresh).toBeGreaterThanOrEqual(budget * 3 + heldout - 3);
}

/** Scores the evaluator computed for a search (log lines `evaluation completed`, `reused: false`). */
async function freshScores(cluster: Cluster, searchId: string): Promise<number> {
  let n = 0;
  for (const line of await cluster.logLines('evaluator')) {
    if (line['msg'] !== 'evaluation completed' || line['searchId'] !== searchId) continue;
    const scores = line['scores'] as { reused?: boolean }[] | undefined;
    n += (scores ?? []).filter((x) => x.reused === false).length;
  }
  return n;
}

interface TopicRecord {
  readonly topic: string;
  readonly key: string;
  /** Undefined when the value is not an envelope. */
  readonly envelope: events.Envelope | undefined;
  readonly headers: Record<string, string>;
  /** The producer's create time (ms). */
  readonly timestamp: number;
}

function kafkaClient(clientId: string): Kafka {
  return new Kafka({ clientId, brokers: brokers().split(','), logLevel: logLevel.NOTHING });
}

/** Every record of the (existing) topics from the beginning, decoded (one fresh group per call). */
async function readTopics(topics: readonly string[]): Promise<TopicRecord[]> {
  const kafka = kafkaClient('hm3-e2e-reader');
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  let total = 0;
  for (const topic of present)
    for (const p of await admin.fetchTopicOffsets(topic)) total += Number(p.high) - Number(p.low);
  await admin.disconnect();
  const out: TopicRecord[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `hm3-e2e-reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: present, fromBeginning: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${out.length}/${total} of ${present.join(', ')}`)),
        120_000,
      );
      void consumer.run({
        eachMessage: async ({ topic, message }) => {
          let envelope: events.Envelope | undefined;
          try {
            envelope = events.Envelope.decode(message.value ?? new Uint8Array());
          } catch {
            envelope = undefined;
          }
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
          out.push({
            topic,
            key: message.key?.toString() ?? '',
            envelope,
            headers,
            timestamp: Number(message.timestamp),
          });
          if (out.length >= total) {
            clearTimeout(timer);
            resolve();
          }
          return Promise.resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Waits until a consumer group has consumed everything on a topic (lag 0). */
async function waitForNoLag(groupId: string, topic: string, timeoutMs: number): Promise<void> {
  const admin = kafkaClient('hm3-e2e-lag').admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const lag = ends.reduce((n, end) => {
        const at = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
        return n + Number(end.high) - Math.max(Number(at), Number(end.low));
      }, 0);
      if (lag === 0) return;
      if (Date.now() > deadline) throw new Error(`${groupId} still has ${lag} to consume on ${topic}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await admin.disconnect();
  }
}

describe('distributed search over Kafka and FerretDB, four services as processes', () => {
  it('a search with a budget of 60 completes; its front in MongoDB equals the non-dominated set of its stored scores', async () => {
    await scenario('happy', async ({ cluster, store, client }) => {
      const { searchId } = await client().startSearch({
        spec: zooSpec({ budget: 60, seed: RUN_SEED + 11 }),
        searchId: '',
      });
      expect(searchId).not.toBe('');
      // WatchSearch streams status, rounds and candidates to the end.
      const seen = { rounds: 0, candidates: 0, last: undefined as optimizer.SearchStatus | undefined };
      for await (const message of client().watchSearch({ searchId })) {
        if (message.event?.$case === 'round') seen.rounds++;
        if (message.event?.$case === 'candidate') seen.candidates++;
        if (message.event?.$case === 'status') seen.last = message.event.value;
      }
      expect([seen.last?.state, seen.last?.message]).toEqual([optimizer.SearchState.SUCCEEDED, '']);
      expect(seen.last?.evaluationsDone).toBe(60);
      expect(seen.rounds).toBeGreaterThan(0);
      expect(seen.candidates).toBeGreaterThanOrEqual(60);
      await expectExactBudget(cluster, store, searchId, 60);

      const { front } = await client().getFront({ searchId });
      expect(front?.final).toBe(true);
      expect(front?.members.map((m) => m.candidateId).sort()).toEqual(
        (await storedSearch(store, searchId)).front,
      );
      const { candidate, value } = await client().recommend({
        searchId,
        preference: { weights: [0.2, 0.6, 0.2] },
        scalarization: 0,
      });
      expect(front?.members.map((m) => m.candidateId)).toContain(candidate?.candidateId);
      expect(Number.isFinite(value)).toBe(true);
      expect(candidate?.scores.filter((s) => s.split === 1)).toHaveLength(3);

      // The trace id of a candidate is in the optimizer's and the evaluator's log lines about it.
      const optimizerLines = await cluster.logLines('pareto-optimizer');
      const evaluated = optimizerLines.find((l) => l['msg'] === 'evaluation completed');
      expect(evaluated?.['traceId']).toBeTypeOf('string');
      const evaluatorLines = await cluster.logLines('evaluator');
      expect(
        evaluatorLines.some(
          (l) => l['traceId'] === evaluated!['traceId'] && l['candidateId'] === evaluated!['candidateId'],
        ),
      ).toBe(true);
      const merged = optimizerLines.find((l) => l['msg'] === 'merge completed');
      expect((await cluster.logLines('tensor-merge')).some((l) => l['traceId'] === merged?.['traceId'])).toBe(
        true,
      );

      // Metrics: evaluations, front size and hypervolume per search, in flight, consumer lag per topic.
      const metrics = await (await fetch(`http://127.0.0.1:${cluster.metricsPort}/metrics`)).text();
      expect(metrics).toContain(`hm3_optimizer_evaluations_total{search_id="${searchId}",split="search"} 60`);
      expect(metrics).toMatch(new RegExp(`hm3_optimizer_front_size\\{search_id="${searchId}"\\} [1-9]`));
      expect(metrics).toMatch(
        new RegExp(`hm3_optimizer_front_hypervolume\\{search_id="${searchId}"\\} 0\\.\\d+`),
      );
      expect(metrics).toContain(`hm3_optimizer_candidates_in_flight{search_id="${searchId}"} 0`);
      expect(metrics).toMatch(/hm3_consumer_lag\{topic="hm3.eval.requested",group="hm3-evaluator"\} \d+/);

      // The same kind of search from the command line: hm3 search <spec> --server HOST:PORT.
      const specFile = path.join(work, 'cli-spec.yaml');
      await writeFile(specFile, zooSpecYaml({ budget: 6, seed: RUN_SEED + 99, name: 'cli' }));
      const cli = spawnSync(
        process.execPath,
        [HM3_BIN, 'search', specFile, '--server', cluster.optimizerAddress],
        {
          encoding: 'utf8',
          timeout: 180_000,
        },
      );
      expect(cli.stderr).toMatch(/SEARCH_STATE_SUCCEEDED: 6 evaluations/);
      expect(cli.status).toBe(0);
      expect(cli.stdout.split('\n')[0]).toMatch(/^candidate\ttranslate \(search\)/);

      const { searches } = await client().listSearches({
        pageSize: 10,
        pageToken: '',
        state: optimizer.SearchState.SUCCEEDED,
      });
      expect(searches.map((s) => s.searchId)).toContain(searchId);
    });
  });

  it('SIGKILL of the evaluator mid-search and a restart: exactly the budget, none lost, none duplicated', async () => {
    await scenario('kill_evaluator', async ({ cluster, store, client }) => {
      const budget = 30;
      const { searchId } = await client().startSearch({
        spec: zooSpec({ budget, seed: RUN_SEED + 23 }),
        searchId: '',
      });
      await waitFor(client, searchId, (s) => s.evaluationsDone >= 8, 480_000);
      await cluster.kill('evaluator');
      await cluster.start('evaluator');
      const final = await waitFor(client, searchId, isTerminal, 540_000);
      expect(final.state).toBe(optimizer.SearchState.SUCCEEDED);
      expect(final.evaluationsDone).toBe(budget);
      await expectExactBudget(cluster, store, searchId, budget);
    });
  });

  it('SIGKILL of the optimizer mid-search and a restart: the search resumes, exactly the budget, front = non-dominated set', async () => {
    await scenario('kill_optimizer', async ({ cluster, store, client }) => {
      const budget = 30;
      const { searchId } = await client().startSearch({
        spec: zooSpec({ budget, seed: RUN_SEED + 37 }),
        searchId: '',
      });
      const before = await waitFor(client, searchId, (s) => s.evaluationsDone >= 10, 480_000);
      expect(isTerminal(before)).toBe(false);
      await cluster.kill('pareto-optimizer');
      await cluster.start('pareto-optimizer');
      const final = await waitFor(client, searchId, isTerminal, 540_000);
      expect(final.state).toBe(optimizer.SearchState.SUCCEEDED);
      expect(final.evaluationsDone).toBe(budget);
      await expectExactBudget(cluster, store, searchId, budget);
      expect(
        (await cluster.logLines('pareto-optimizer')).some(
          (l) => l['msg'] === 'search resumed' && l['searchId'] === searchId,
        ),
      ).toBe(true);
    });
  });

  it('CancelSearch during a round: no event for the search after in-flight work drains; CANCELLED; GetFront answers; a poison event is dead-lettered and the search goes on', async () => {
    await scenario('cancel', async ({ store, client }) => {
      const { searchId } = await client().startSearch({
        spec: zooSpec({ budget: 60, seed: RUN_SEED + 51 }),
        searchId: '',
      });
      await waitFor(client, searchId, (s) => s.evaluationsDone >= 6, 480_000);

      // A poison answer on a topic the optimizer consumes: it is dead-lettered with the reason.
      const poisonKey = `poison-${randomUUID()}`;
      const kafka = new Kafka({
        clientId: 'hm3-e2e-poison',
        brokers: brokers().split(','),
        logLevel: logLevel.NOTHING,
      });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: TOPICS.EVAL_COMPLETED,
        messages: [{ key: poisonKey, value: Buffer.from([0xff, 0xff, 0xff, 0x07, 0x01]) }],
      });
      await producer.disconnect();
      const progressed = await waitFor(client, searchId, (s) => s.evaluationsDone >= 10, 480_000);
      expect(isTerminal(progressed)).toBe(false);

      const { status } = await client().cancelSearch({ searchId, reason: 'e2e cancel' });
      const cancelledAt = Date.now();
      expect([optimizer.SearchState.CANCELLING, optimizer.SearchState.CANCELLED]).toContain(status?.state);
      const final = await waitFor(client, searchId, isTerminal, 480_000);
      expect(final.state).toBe(optimizer.SearchState.CANCELLED);
      expect(final.message).toBe('e2e cancel');

      // No new work after the cancel: every request and round event of the search was produced before
      // it (no new request, re-send, held-out evaluation or round event); every answer answers one of
      // those requests. Then in-flight work drains (the evaluator and the merger have consumed every
      // request, the answers are in) and nothing more for the search is produced on any topic.
      const requestTopics = new Set<string>([
        TOPICS.MERGE_REQUESTED,
        TOPICS.EVAL_REQUESTED,
        TOPICS.ROUND_COMPLETED,
        TOPICS.FRONT_UPDATED,
      ]);
      await waitForNoLag('hm3-evaluator', TOPICS.EVAL_REQUESTED, 300_000);
      await waitForNoLag('hm3-tensor-merge', TOPICS.MERGE_REQUESTED, 300_000);
      await new Promise((r) => setTimeout(r, 3000));
      const ofSearch = async () =>
        (await readTopics(TOPIC_NAMES)).filter((r) => r.envelope?.searchId === searchId);
      const drained = await ofSearch();
      const requests = drained.filter((r) => requestTopics.has(r.topic));
      expect(requests.filter((r) => r.topic === TOPICS.EVAL_REQUESTED).length).toBeGreaterThan(0);
      for (const r of requests) expect(r.timestamp).toBeLessThanOrEqual(cancelledAt);
      const requestIds = new Set(requests.map((r) => r.envelope!.eventId));
      const answers = drained.filter((r) => !requestTopics.has(r.topic));
      expect(answers.length).toBeGreaterThan(0);
      for (const r of answers) expect(requestIds.has(r.envelope!.causationId)).toBe(true);
      await new Promise((r) => setTimeout(r, 5000));
      expect((await ofSearch()).length).toBe(drained.length);
      const { front } = await client().getFront({ searchId });
      expect(front?.members.length).toBeGreaterThan(0);
      const stored = await storedSearch(store, searchId);
      expect(stored.scored.size).toBe(final.evaluationsDone);
      expect(stored.scored.size).toBeLessThan(60);

      // Every consumer of hm3.eval.completed dead-letters it (the optimizer's group and the evaluator's
      // score recorder), each with its reason.
      const poisoned = (await readTopics([TOPICS.DEAD_LETTER])).filter(
        (r) => r.key === poisonKey && r.headers['hm3-dead-letter-source-topic'] === TOPICS.EVAL_COMPLETED,
      );
      expect(poisoned.map((r) => r.headers[DEAD_LETTER_HEADERS.consumerGroup]).sort()).toEqual([
        'hm3-evaluator-scores',
        'hm3-pareto-optimizer',
      ]);
      for (const r of poisoned) expect(r.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/./);
    });
  });
});
