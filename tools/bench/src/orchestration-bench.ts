/**
 * `npm run bench -- orchestration`: what the distributed search costs beyond its evaluations, over the
 * real Kafka broker and FerretDB (tools/infra), in one process (the optimizer core, its ports, a
 * journal and the store as `hm3 serve pareto-optimizer` wires them; rl-policy in process over gRPC).
 *
 *   1. stub: an evaluator and a merger that answer at once (they speak the event contract, as an
 *      external cluster would) -> candidates per second through Kafka and FerretDB; FerretDB's raw
 *      insert rate (sequential insertOne of small documents) is measured in the same run.
 *   2. real: the real evaluator (its Kafka consumer, onnxruntime on the zoo) and the stub merger ->
 *      the search's wall time against the sum of the evaluator's own evaluation times
 *      (eval.completed elapsed_seconds): the orchestration overhead.
 *
 * Options: --candidates N (stub budget, default 300), --real-budget N (default 30, 0: skip),
 * --strategy (stub: param-only (default: no policy calls, orchestration alone), hm3 or arch-only;
 * the strategies the optimizer's wire spec names), --per-round N (stub: proposals per round, the most
 * in flight: param-only's population, hm3's 4 preferences x N/4 episodes; default 32),
 * --concurrency N (the optimizer's evaluations in flight, default 32), --max-examples N (real:
 * examples per objective, default 16), --real-per-round N (real: proposals per policy round; default
 * 0: the search's defaults, 4 preferences x 8 episodes = 32, what a user gets), --out FILE. Both
 * parts report where the optimizer's time went (calls and milliseconds of the store, journal, bus and
 * policy client) and check that every candidate record of the search is SCORED at its end.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path, { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEvaluatorServer } from '@hm3/evaluator';
import { KafkaEventBus, type EventBus } from '@hm3/events';
import { ensureFerretDb, ensureKafka, kafkaBrokers, mongoUrl } from '@hm3/infra';
import {
  FolderModelCatalog,
  MongoJournal,
  ParetoOptimizer,
  specToWire,
  startStubEvaluator,
  startStubMerger,
} from '@hm3/pareto-optimizer';
import { events, policy, TOPICS } from '@hm3/proto';
import { startRlPolicyServer } from '@hm3/rl-policy';
import { parseSearchSpecYaml } from '@hm3/search';
import { createClient, loadServiceConfig } from '@hm3/service-kit';
import { createInMemoryStore, createMongoStore, type Store } from '@hm3/store';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { MongoClient } from 'mongodb';

const here = dirname(fileURLToPath(import.meta.url));
const ZOO = join(here, '../../fixtures/zoo');
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
/** HM3_BENCH_LOG=1: the optimizer's log lines (request round trips) on stderr. */
const benchLogger =
  process.env['HM3_BENCH_LOG'] === '1'
    ? {
        info: (o: object, m?: string) => console.error(`${Date.now()} ${m ?? ''} ${JSON.stringify(o)}`),
        warn: (o: object, m?: string) => console.error(`${Date.now()} WARN ${m ?? ''} ${JSON.stringify(o)}`),
        error: (o: object, m?: string) =>
          console.error(`${Date.now()} ERROR ${m ?? ''} ${JSON.stringify(o)}`),
      }
    : silent;

/**
 * Where the optimizer's time goes: every async method of the store's repositories, the journal, the
 * bus and the policy client, timed (calls, total and mean milliseconds; concurrent calls overlap).
 */
class CallProfile {
  private readonly stats = new Map<string, { calls: number; ms: number }>();

  wrap<T extends object>(target: T, prefix: string): T {
    return new Proxy(target, {
      get: (obj, prop, receiver) => {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        return (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown).apply(obj, args);
          if (!(result instanceof Promise)) return result;
          const t = performance.now();
          const done = () => {
            const s = this.stats.get(`${prefix}.${prop}`) ?? { calls: 0, ms: 0 };
            s.calls++;
            s.ms += performance.now() - t;
            this.stats.set(`${prefix}.${prop}`, s);
          };
          return result.finally(done);
        };
      },
    });
  }

  /** The store's repositories, each wrapped. */
  store<S extends Store>(store: S): S {
    const repos = ['models', 'searches', 'candidates', 'scores', 'fronts', 'policies', 'processedEvents'];
    return new Proxy(store, {
      get: (obj, prop, receiver) => {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof prop === 'string' && repos.includes(prop))
          return this.wrap(value as object, `store.${prop}`);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
      },
    });
  }

  report(): Record<string, { calls: number; totalMs: number; meanMs: number }> {
    const out: Record<string, { calls: number; totalMs: number; meanMs: number }> = {};
    for (const [name, s] of [...this.stats].sort((a, b) => b[1].ms - a[1].ms))
      out[name] = { calls: s.calls, totalMs: Math.round(s.ms), meanMs: Number((s.ms / s.calls).toFixed(2)) };
    return out;
  }

  reset(): void {
    this.stats.clear();
  }
}

interface Config {
  candidates: number;
  realBudget: number;
  strategy: string;
  perRound: number;
  concurrency: number;
  maxExamples: number;
  realPerRound: number;
  out: string;
}

function parse(args: readonly string[]): Config {
  const { values } = parseArgs({
    args: [...args],
    options: {
      candidates: { type: 'string', default: '300' },
      'real-budget': { type: 'string', default: '30' },
      strategy: { type: 'string', default: 'param-only' },
      'per-round': { type: 'string', default: '32' },
      concurrency: { type: 'string', default: '32' },
      'max-examples': { type: 'string', default: '16' },
      'real-per-round': { type: 'string', default: '0' },
      out: {
        type: 'string',
        default: join(here, '../results', `orchestration-${new Date().toISOString().slice(0, 10)}.json`),
      },
    },
    strict: true,
  });
  const int = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  if (!['param-only', 'hm3', 'arch-only'].includes(values.strategy))
    throw new Error(
      `--strategy must be param-only, hm3 or arch-only (the wire's strategies), got ${values.strategy}`,
    );
  return {
    candidates: int('candidates', values.candidates, 1),
    realBudget: int('real-budget', values['real-budget'], 0),
    strategy: values.strategy,
    perRound: int('per-round', values['per-round'], 4),
    concurrency: int('concurrency', values.concurrency, 1),
    maxExamples: int('max-examples', values['max-examples'], 1),
    realPerRound: int('real-per-round', values['real-per-round'], 0),
    out: values.out,
  };
}

/**
 * perRound: proposals per round (4 preferences x perRound/4 episodes, population perRound); undefined:
 * the search's defaults (preference_count 4, episodes_per_iteration 8: 32 per policy round).
 */
const specYaml = (budget: number, strategy: string, maxExamples: number, seed: number, perRound?: number) =>
  [
    `name: orchestration-${strategy}`,
    'base: base',
    'experts: [expert-translate, expert-math, expert-code]',
    'objectives:',
    ...['translate', 'math', 'code'].map(
      (t) => `  - { name: ${t}, dataset: "zoo:${t}", max_examples: ${maxExamples} }`,
    ),
    `budget: { max_evaluations: ${budget} }`,
    `strategy: ${strategy}`,
    ...(perRound === undefined
      ? []
      : [
          'preference_count: 4',
          `rl: { episodes_per_iteration: ${Math.max(1, Math.floor(perRound / 4))} }`,
          `upper: { population: ${perRound} }`,
        ]),
    `seed: ${seed}`,
  ].join('\n');

const serviceConfig = (logLevel = 'silent') =>
  loadServiceConfig({
    env: {
      HM3_HOST: '127.0.0.1',
      HM3_PORT: '0',
      HM3_ALLOW_UNAUTHENTICATED: 'true',
      HM3_METRICS_PORT: 'off',
      HM3_LOG_LEVEL: logLevel,
    },
    argv: [],
  });

/** FerretDB's raw rate: sequential insertOne of small documents (what one candidate's writes look like). */
async function rawInsertRate(url: string, database: string, count = 500): Promise<number> {
  const client = new MongoClient(url);
  await client.connect();
  try {
    const c = client.db(database).collection('raw_insert_bench');
    await c.insertOne({ warm: true });
    const t = performance.now();
    for (let i = 0; i < count; i++)
      await c.insertOne({ candidate_id: `c-${i}`, objective: 'math', split: 'search', value: i / count });
    return count / ((performance.now() - t) / 1000);
  } finally {
    await client
      .db(database)
      .dropDatabase()
      .catch(() => undefined);
    await client.close();
  }
}

/**
 * Moves the built-in services' consumer groups past the requests this bench produced, so neither the
 * real evaluator of part 2 nor a later `hm3 serve` works through them. Refused (and reported) while
 * a member of the group is running.
 */
async function skipBenchRequests(): Promise<string[]> {
  const kafka = new Kafka({
    clientId: 'hm3-bench-orchestration-admin',
    brokers: kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const skipped: string[] = [];
  try {
    for (const [groupId, topic] of [
      ['hm3-evaluator', TOPICS.EVAL_REQUESTED],
      ['hm3-tensor-merge', TOPICS.MERGE_REQUESTED],
    ] as const) {
      try {
        await moveToEnd(admin, groupId, topic);
        skipped.push(`${groupId}@${topic}`);
      } catch (error) {
        console.warn(`could not move ${groupId} past the bench's requests on ${topic}: ${String(error)}`);
      }
    }
  } finally {
    await admin.disconnect();
  }
  return skipped;
}

/**
 * Commits a group's offsets at the topic's current end. Not resetOffsets({earliest: false}): that
 * commits -1, which a consumer started with fromBeginning reads as "from the beginning".
 */
async function moveToEnd(admin: Admin, groupId: string, topic: string): Promise<void> {
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.setOffsets({
    groupId,
    topic,
    partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
  });
}

/** Commits a fresh consumer group's offsets at the end of `topic`, so it reads only what comes next. */
async function startGroupAtEnd(groupId: string, topic: string): Promise<void> {
  const kafka = new Kafka({
    clientId: 'hm3-bench-orchestration-admin',
    brokers: kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await moveToEnd(admin, groupId, topic);
  } finally {
    await admin.disconnect();
  }
}

interface Run {
  seconds: number;
  evaluations: number;
  rounds: number;
  /** The search's candidate records in the store, and those not SCORED (must be none). */
  storedCandidates: number;
  storedNotScored: number;
}

export async function orchestrationBenchCommand(args: readonly string[]): Promise<number> {
  const config = parse(args);
  const leases = await Promise.all([ensureKafka(), ensureFerretDb()]);
  const database = `hm3_bench_orchestration_${randomUUID().slice(0, 8)}`;
  const work = mkdtempSync(join(os.tmpdir(), 'hm3-orchestration-'));
  const bus: EventBus = new KafkaEventBus({ brokers: kafkaBrokers(), clientId: 'hm3-bench-orchestration' });
  const store = createMongoStore({ url: mongoUrl(), database });
  const journal = new MongoJournal({ url: mongoUrl(), database });
  const rlStore = createInMemoryStore();
  const profile = new CallProfile();
  const mine = new Set<string>();
  const accept = (searchId: string) => mine.has(searchId);
  const result: Record<string, unknown> = {
    command: `npm run bench -- orchestration ${args.join(' ')}`.trim(),
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? '',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    },
    note: 'the machine is shared with other jobs while this runs: timings are noisy',
    config,
  };
  const closers: (() => Promise<unknown>)[] = [];
  try {
    await store.start();
    await journal.start();
    await bus.start();
    await rlStore.start();
    const rl = await startRlPolicyServer({
      config: serviceConfig(),
      store: rlStore,
      artifactRoot: join(work, 'policy'),
    });
    closers.push(() => rl.stop());
    const policyClient = createClient(policy.PolicyServiceService, { address: `127.0.0.1:${rl.port}` });
    closers.push(async () => policyClient.close());
    const core = new ParetoOptimizer({
      store: profile.store(store),
      bus: profile.wrap(bus, 'bus'),
      journal: profile.wrap(journal, 'journal'),
      catalog: new FolderModelCatalog({ modelsRoot: ZOO, artifactRoot: join(work, 'artifacts') }),
      policy: profile.wrap(policyClient, 'policy'),
      concurrency: config.concurrency,
      logger: benchLogger,
      groupId: `hm3-bench-optimizer-${randomUUID().slice(0, 8)}`,
    });
    await core.start();
    closers.push(() => core.stop());
    const merger = await startStubMerger(bus, 'base', { groupId: 'hm3-bench-merger', accept });
    closers.push(() => merger.stop());

    const runSearch = async (yaml: string, ids?: Set<string>): Promise<Run & { searchId: string }> => {
      const searchId = `bench-${randomUUID()}`;
      mine.add(searchId);
      ids?.add(searchId);
      const t = performance.now();
      await core.startSearch(specToWire(parseSearchSpecYaml(yaml, 'bench.yaml')), searchId);
      await core.settled(searchId);
      const seconds = (performance.now() - t) / 1000;
      const status = await core.status(searchId);
      if (status.state !== 4)
        throw new Error(`search ${searchId} ended in state ${status.state}: ${status.message}`);
      const records = await store.candidates.listBySearch(searchId);
      const storedNotScored = records.filter((r) => r.state !== 'SCORED').length;
      if (storedNotScored > 0)
        throw new Error(`search ${searchId}: ${storedNotScored} stored candidates are not SCORED`);
      return {
        searchId,
        seconds,
        evaluations: status.evaluationsDone,
        rounds: status.roundsCompleted,
        storedCandidates: records.length,
        storedNotScored,
      };
    };

    // 1. The stub evaluator: orchestration alone.
    const stub = await startStubEvaluator(bus, { groupId: 'hm3-bench-stub-evaluator', accept });
    result['ferretdbRawInsertsPerSecond'] = Math.round(await rawInsertRate(mongoUrl(), `${database}_raw`));
    profile.reset();
    const stubRun = await runSearch(specYaml(config.candidates, config.strategy, 4, 1, config.perRound));
    const stubProfile = profile.report();
    await stub.stop();
    result['skippedForBuiltInGroups'] = await skipBenchRequests();
    const searchRequests = stub.requests.filter((r) => r.split === 1).length;
    result['stub'] = {
      strategy: config.strategy,
      ...stubRun,
      searchRequests,
      candidatesPerSecond: Number((stubRun.evaluations / stubRun.seconds).toFixed(1)),
      target: 50,
      perRound: config.perRound,
      concurrency: config.concurrency,
      profile: stubProfile,
    };
    console.log(
      `stub evaluator: ${stubRun.evaluations} candidates in ${stubRun.seconds.toFixed(1)} s = ` +
        `${(stubRun.evaluations / stubRun.seconds).toFixed(1)} candidates/s (target >= 50); ` +
        `FerretDB raw inserts: ${String(result['ferretdbRawInsertsPerSecond'])}/s`,
    );

    // 2. The real evaluator: overhead over the evaluations themselves.
    if (config.realBudget > 0) {
      // Its own consumer group, starting at the end of the topic: the shared broker's hm3-evaluator
      // group may have members (an e2e run's evaluator) that would take the partitions.
      const evaluatorGroup = `hm3-bench-evaluator-${randomUUID().slice(0, 8)}`;
      await startGroupAtEnd(evaluatorGroup, TOPICS.EVAL_REQUESTED);
      const evaluator = await startEvaluatorServer({
        consumerGroup: evaluatorGroup,
        // HM3_BENCH_LOG=1: the evaluator's log lines too (pino, with their times).
        config: serviceConfig(process.env['HM3_BENCH_LOG'] === '1' ? 'debug' : 'silent'),
        store,
        bus,
        modelsRoot: ZOO,
        datasetRoots: [],
        artifactRoot: join(work, 'artifacts'),
        intraOpThreads: 1,
        recordScores: false,
      });
      closers.push(() => evaluator.stop());
      const elapsed = new Map<string, number>();
      const realIds = new Set<string>();
      const watcher = await bus.subscribe(
        {
          groupId: `hm3-bench-watch-${randomUUID().slice(0, 8)}`,
          topics: [TOPICS.EVAL_COMPLETED],
          fromBeginning: false,
        },
        (event) => {
          const e = events.Envelope.decode(event.value);
          if (realIds.has(e.searchId) && e.payload?.$case === 'evalCompleted')
            elapsed.set(
              `${e.candidateId}|${e.payload.value.scores[0]?.split ?? 0}`,
              e.payload.value.elapsedSeconds,
            );
          return Promise.resolve();
        },
      );
      closers.push(() => watcher.stop());
      profile.reset();
      const realRun = await runSearch(
        specYaml(config.realBudget, 'hm3', config.maxExamples, 2, config.realPerRound || undefined),
        realIds,
      );
      const realProfile = profile.report();
      await new Promise((r) => setTimeout(r, 2000));
      const evaluationSeconds = [...elapsed.values()].reduce((a, b) => a + b, 0);
      const overhead = (realRun.seconds - evaluationSeconds) / evaluationSeconds;
      result['real'] = {
        strategy: 'hm3',
        maxExamples: config.maxExamples,
        perPolicyRound: config.realPerRound || 'the search defaults (4 preferences x 8 episodes)',
        ...realRun,
        evaluationsAnswered: elapsed.size,
        evaluationSeconds: Number(evaluationSeconds.toFixed(2)),
        orchestrationOverhead: Number(overhead.toFixed(4)),
        target: '< 0.10',
        profile: realProfile,
        includes:
          'Kafka round trips, store writes, policy proposals and PPO updates (rl-policy over gRPC), held-out re-scoring of the front',
      };
      console.log(
        `real evaluator: ${realRun.evaluations} evaluations (+ held-out) in ${realRun.seconds.toFixed(1)} s; ` +
          `the evaluator's own time ${evaluationSeconds.toFixed(1)} s; orchestration adds ${(overhead * 100).toFixed(1)}% (target < 10%)`,
      );
    }
    mkdirSync(path.dirname(config.out), { recursive: true });
    writeFileSync(config.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${config.out}`);
    return 0;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await bus.close().catch(() => undefined);
    const admin = new MongoClient(mongoUrl());
    await admin
      .connect()
      .then(() => admin.db(database).dropDatabase())
      .catch(() => undefined);
    await admin.close().catch(() => undefined);
    await journal.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await rlStore.close().catch(() => undefined);
    await Promise.allSettled(leases.map((l) => l.release()));
    rmSync(work, { recursive: true, force: true });
  }
}
