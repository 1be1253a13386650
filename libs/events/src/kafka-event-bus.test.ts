import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMongoStore } from '@hm3/store';
import { restartKafka } from '@hm3/infra';
import {
  describeEventBusContract,
  eventually,
  uniqueSuffix,
  type CrashConsumerProgress,
  type CrashConsumerRun,
  type CrashHarness,
} from './event-bus.contract.js';
import { CONSUMER_LAG_METRIC } from './consumer-lag-metric.js';
import { KafkaEventBus, type KafkaEventBusConfig } from './kafka-event-bus.js';
import { COUNTERS, CRASH_DB, CRASH_OBJECTIVE } from './mongo-crash-effects.test-helper.js';

const BROKERS = (process.env.HM3_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const MONGO_URL = process.env.HM3_MONGO_URL ?? 'mongodb://127.0.0.1:27017';
const CHILD = fileURLToPath(new URL('./kafka-crash-child.test-helper.ts', import.meta.url));

const quietLogger = () => pino({ level: process.env.HM3_LOG_LEVEL ?? 'error' });

function busConfig(extra: Partial<KafkaEventBusConfig> = {}): KafkaEventBusConfig {
  return {
    brokers: BROKERS,
    clientId: 'hm3-events-test',
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 },
    retryBackoffMs: 50,
    logger: quietLogger(),
    kafkaLogLevel: 'nothing',
    metrics: { registry: new Registry(), lagRefreshMs: 0 },
    ...extra,
  };
}

/** Runs the crash consumer as a child process, SIGKILLed from here or by its own fault hooks. */
function childProcessHarness(): CrashHarness & { close(): Promise<void> } {
  const client = new MongoClient(MONGO_URL);
  const store = createMongoStore({ url: MONGO_URL, database: CRASH_DB });
  let started: Promise<void> | undefined;
  const ready = () => (started ??= Promise.all([client.connect(), store.start()]).then(() => undefined));
  const children = new Set<ChildProcess>();
  return {
    label: 'SIGKILLed child process',
    async prepare(runId) {
      await ready();
      await client
        .db(CRASH_DB)
        .collection<{ _id: string; n: number; applied: string[] }>(COUNTERS)
        .insertOne({ _id: runId, n: 0, applied: [] });
    },
    async start(spec) {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
        env: {
          ...process.env,
          HM3_CRASH_SPEC: JSON.stringify(spec),
          HM3_KAFKA_BROKERS: BROKERS.join(','),
          HM3_MONGO_URL: MONGO_URL,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let progress: CrashConsumerProgress = { handled: 0, applied: 0, reapplied: 0, redeliveries: 0 };
      let stderr = '';
      let buffered = '';
      let isReady: () => void;
      const readyPromise = new Promise<void>((resolve) => (isReady = resolve));
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          try {
            const message = JSON.parse(line) as { type: string } & CrashConsumerProgress;
            if (message.type === 'ready') isReady();
            if (message.type === 'progress' || message.type === 'stopped') {
              const { type: _type, ...p } = message;
              progress = p;
            }
          } catch {
            // not a report line
          }
        }
      });
      child
        .stderr!.setEncoding('utf8')
        .on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
      const dead = new Promise<void>((resolve) =>
        child.once('exit', () => {
          children.delete(child);
          resolve();
        }),
      );
      await Promise.race([
        readyPromise,
        dead.then(() => {
          throw new Error(`crash child exited before it was ready: ${stderr}`);
        }),
      ]);
      const run: CrashConsumerRun = {
        progress: () => progress,
        async waitFor(predicate, timeoutMs) {
          return eventually(
            () => {
              if (child.exitCode !== null || child.signalCode !== null)
                throw new Error(`crash child died: ${stderr}`);
              return predicate(progress) ? progress : undefined;
            },
            timeoutMs,
            'crash child progress',
          );
        },
        dead,
        async kill() {
          child.kill('SIGKILL');
          await dead;
        },
        async stop() {
          child.kill('SIGTERM');
          await dead;
          expect(child.exitCode, stderr).toBe(0);
        },
      };
      return run;
    },
    async readEffects(runId) {
      await ready();
      const scores = await store.scores.listBySearch(runId);
      const counter = await client
        .db(CRASH_DB)
        .collection<{ _id: string; n: number }>(COUNTERS)
        .findOne({ _id: runId });
      return {
        effects: scores
          .filter((s) => s.objective === CRASH_OBJECTIVE)
          .map((s) => ({ eventId: s.candidateId, value: s.value })),
        counter: counter?.n ?? 0,
      };
    },
    async close() {
      for (const child of children) child.kill('SIGKILL');
      if (started) await Promise.all([client.close(), store.close()]);
    },
  };
}

const crash = childProcessHarness();

describeEventBusContract(
  `kafka @${BROKERS.join(',')}`,
  async () => ({
    async createBus(topics) {
      const bus = new KafkaEventBus(busConfig({ topics }));
      await bus.start();
      return bus;
    },
    crash,
    disruption: {
      async disrupt() {
        await restartKafka();
      },
    },
    deliveryTimeoutMs: 45_000,
    teardown: () => crash.close(),
  }),
  { crash: 'SIGKILLed child process', disruption: 'broker restart' },
);

describe(`KafkaEventBus [kafka @${BROKERS.join(',')}]`, () => {
  it('exposes consumer lag as hm3_consumer_lag{topic,group} in the given registry', async () => {
    const registry = new Registry();
    const topic = `t.metric.${uniqueSuffix()}`;
    const group = `g.metric.${uniqueSuffix()}`;
    const bus = new KafkaEventBus(
      busConfig({ topics: [{ name: topic, partitions: 2 }], metrics: { registry, lagRefreshMs: 200 } }),
    );
    await bus.start();
    try {
      await bus.publish(
        topic,
        Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: new Uint8Array([i]) })),
      );
      await bus.lag(group, [topic]);
      const text = await registry.metrics();
      expect(text).toContain(`${CONSUMER_LAG_METRIC}{topic="${topic}",group="${group}"} 9`);
      const sub = await bus.subscribe(
        { groupId: group, topics: [topic], commit: { everyMessages: 1, intervalMs: 100 } },
        async () => undefined,
      );
      await eventually(
        async () =>
          (await registry.metrics()).includes(`${CONSUMER_LAG_METRIC}{topic="${topic}",group="${group}"} 0`)
            ? true
            : undefined,
        30_000,
        'the gauge to reach 0 through the subscription refresh',
      );
      await sub.stop();
    } finally {
      await bus.close();
    }
  });

  it('never logs SASL credentials, even when authentication fails', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const password = `pw-${uniqueSuffix()}`;
    const bus = new KafkaEventBus({
      brokers: BROKERS,
      sasl: { mechanism: 'scram-sha-512', username: 'hm3-user', password },
      retry: { retries: 0, initialRetryTimeMs: 50, maxRetryTimeMs: 100 },
      connectionTimeoutMs: 2000,
      logger: pino({ level: 'debug' }, sink),
      kafkaLogLevel: 'debug',
    });
    // The test broker listens in PLAINTEXT without SASL: the handshake fails.
    await expect(bus.start()).rejects.toThrow();
    await bus.close().catch(() => undefined);
    const text = lines.join('');
    expect(lines.length).toBeGreaterThan(0);
    expect(text).toContain('scram-sha-512');
    expect(text).not.toContain(password);
  });

  it('grows a configured topic created before with fewer partitions; two replicas of one group share candidate-keyed work', async () => {
    const topic = `t.partitions.${uniqueSuffix()}`;
    const group = `g.partitions.${uniqueSuffix()}`;
    const old = new KafkaEventBus(busConfig({ topics: [{ name: topic, partitions: 1 }] }));
    await old.start();
    await old.close();
    const replicas = [0, 1].map(
      () => new KafkaEventBus(busConfig({ topics: [{ name: topic, partitions: 4 }] })),
    );
    const admin = new Kafka({
      clientId: 'hm3-events-test-admin',
      brokers: BROKERS,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      for (const bus of replicas) await bus.start();
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(topics[0]?.partitions).toHaveLength(4);
      const got = replicas.map(() => new Set<string>());
      const subs = await Promise.all(
        replicas.map((bus, r) =>
          bus.subscribe({ groupId: group, topics: [topic] }, async (event) => {
            got[r]!.add(event.key);
          }),
        ),
      );
      // Candidate ids as keys (content hashes): the murmur2 partitioner spreads them over the partitions.
      const published = new Set<string>();
      let batch = 0;
      await eventually(
        async () => {
          const keys = Array.from(
            { length: 16 },
            (_, i) => `c-${createHash('sha1').update(`${batch}.${i}`).digest('hex')}`,
          );
          batch++;
          await replicas[0]!.publish(
            topic,
            keys.map((key) => ({ key, value: new Uint8Array([1]) })),
          );
          for (const k of keys) published.add(k);
          await new Promise((resolve) => setTimeout(resolve, 500));
          const all = new Set([...got[0]!, ...got[1]!]);
          return got.every((g) => g.size > 0) && [...published].every((k) => all.has(k)) ? true : undefined;
        },
        60_000,
        'both replicas to receive work and every record to be delivered',
      );
      await Promise.all(subs.map((sub) => sub.stop()));
    } finally {
      await admin.disconnect();
      await Promise.all(replicas.map((bus) => bus.close()));
    }
  }, 90_000);

  it('services starting at once on fresh topics all start, and the topics get their partitions', async () => {
    const topics = [0, 1, 2].map((i) => ({ name: `t.race.${i}.${uniqueSuffix()}`, partitions: 3 }));
    const buses = [0, 1, 2, 3].map(() => new KafkaEventBus(busConfig({ topics })));
    const admin = new Kafka({
      clientId: 'hm3-events-test-admin',
      brokers: BROKERS,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      await Promise.all(buses.map((bus) => bus.start()));
      const metadata = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.name) });
      expect(metadata.topics.map((t) => t.partitions.length)).toEqual([3, 3, 3]);
    } finally {
      await admin.disconnect();
      await Promise.all(buses.map((bus) => bus.close()));
    }
  }, 90_000);

  it('refuses to publish after a clean close', async () => {
    const bus = new KafkaEventBus(busConfig());
    await bus.start();
    await bus.close();
    await expect(bus.publish('t.any', [{ key: 'k', value: new Uint8Array() }])).rejects.toThrow(
      /not started/,
    );
  });
});
