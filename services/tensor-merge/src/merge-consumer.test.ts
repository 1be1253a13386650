// The Kafka path against the real servers (@hm3/infra's global setup): a merge.requested event is
// merged and answered with merge.completed; a bad recipe is answered with merge.failed; a redelivered
// request is not merged again. Store: FerretDB through the official driver.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EVENT_ID_HEADER, KafkaEventBus, type Subscription } from '@hm3/events';
import { common, events, TOPICS } from '@hm3/proto';
import { createMongoStore, LocalArtifactStore, type MongoStore } from '@hm3/store';
import { createLogger } from '@hm3/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyModel } from './fixtures.test-helper.js';
import { envelopeRecord, startMergeConsumer, type MergeTopics } from './merge-consumer.js';
import { TensorMerge } from './tensor-merge.js';

const run = randomUUID().slice(0, 8);
const topics: MergeTopics = {
  requested: `test.tm.${run}.merge.requested`,
  completed: `test.tm.${run}.merge.completed`,
  failed: `test.tm.${run}.merge.failed`,
};
const logger = createLogger({ level: 'silent', name: 'merge-consumer-test' });

let dir: string;
let artifacts: LocalArtifactStore;
let store: MongoStore;
let bus: KafkaEventBus;
const subscriptions: Subscription[] = [];
const answers: { topic: string; key: string; envelope: events.Envelope }[] = [];

function request(candidateId: string, recipe: common.MergeRecipe, eventId = randomUUID()): events.Envelope {
  return {
    eventId,
    schemaVersion: 1,
    type: TOPICS.MERGE_REQUESTED,
    occurredAt: new Date(),
    traceId: `trace-${candidateId}`,
    searchId: 'search-1',
    candidateId,
    causationId: '',
    producer: 'test',
    payload: {
      $case: 'mergeRequested',
      value: { recipe, artifactId: '', device: common.Device.UNSPECIFIED },
    },
  };
}

function recipe(weight: number): common.MergeRecipe {
  return common.MergeRecipe.fromPartial({
    method: 'ties',
    base: { uri: 'base' },
    models: [
      { model: { uri: 'a' }, parameters: { weight: { value: { $case: 'scalar', value: weight } } } },
      { model: { uri: 'b' }, parameters: { weight: { value: { $case: 'scalar', value: 0.5 } } } },
    ],
    parameters: { density: { value: { $case: 'scalar', value: 0.5 } } },
    seed: 3n,
  });
}

async function waitFor(predicate: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('timed out waiting for the answers');
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-merge-consumer-'));
  const modelsRoot = path.join(dir, 'models');
  await writeTinyModel(modelsRoot, 'base', 11);
  await writeTinyModel(modelsRoot, 'a', 12);
  await writeTinyModel(modelsRoot, 'b', 13);
  artifacts = new LocalArtifactStore(path.join(dir, 'artifacts'));
  store = createMongoStore({
    url: process.env['HM3_MONGO_URL'] ?? 'mongodb://127.0.0.1:27017',
    database: `hm3_tm_${run}`,
  });
  await store.start();
  bus = new KafkaEventBus({
    brokers: (process.env['HM3_KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(','),
    clientId: `tensor-merge-test-${run}`,
    topics: Object.values(topics).map((name) => ({ name, partitions: 1 })),
    logger,
  });
  await bus.start();
  const core = new TensorMerge({ store, artifacts, modelsRoot });
  subscriptions.push(
    await startMergeConsumer(bus, store.processedEvents, core, { groupId: `tm-${run}`, topics }),
  );
  subscriptions.push(
    await bus.subscribe(
      { groupId: `tm-answers-${run}`, topics: [topics.completed, topics.failed] },
      async (e) => {
        answers.push({ topic: e.topic, key: e.key, envelope: events.Envelope.decode(e.value) });
      },
    ),
  );
});

afterAll(async () => {
  for (const s of subscriptions) await s.stop();
  await bus?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('merge requests over Kafka', () => {
  it('merges on merge.requested and emits merge.completed; a bad recipe emits merge.failed; a redelivery is skipped', async () => {
    const good = request('cand-good', recipe(0.8));
    const bad = recipe(0.8);
    bad.models[0]!.parameters['densty'] = { value: { $case: 'scalar', value: 0.5 } };
    const failing = request('cand-bad', bad);
    await bus.publish(topics.requested, [envelopeRecord(good), envelopeRecord(failing)]);
    await waitFor(() => answers.length >= 2);
    // The same event again (at-least-once delivery): its marker is there, so nothing is redone.
    await bus.publish(topics.requested, [envelopeRecord(good)]);

    const completed = answers.find((a) => a.topic === topics.completed)!;
    expect(completed.key).toBe('cand-good');
    expect(completed.envelope.type).toBe(TOPICS.MERGE_COMPLETED);
    expect(completed.envelope.causationId).toBe(good.eventId);
    expect(completed.envelope.traceId).toBe('trace-cand-good');
    expect(completed.envelope.payload?.$case).toBe('mergeCompleted');
    const done = completed.envelope.payload!.value as events.MergeCompleted;
    expect(done.artifactId).toMatch(/^[0-9a-f]{64}$/);
    expect(done.uri).toBe(`artifact://${done.artifactId}`);
    expect(done.reused).toBe(false);
    expect(await artifacts.has(done.artifactId)).toBe(true);

    const failed = answers.find((a) => a.topic === topics.failed)!;
    expect(failed.key).toBe('cand-bad');
    const why = failed.envelope.payload!.value as events.MergeFailed;
    expect(why.failure?.code).toBe('INVALID_ARGUMENT');
    expect(why.failure?.message).toContain('models[0].parameters.densty');
    expect(why.failure?.retryable).toBe(false);

    expect(await store.processedEvents.has(good.eventId)).toBe(true);
    expect(await store.processedEvents.has(failing.eventId)).toBe(true);
    // Give the redelivery time to be consumed: it must not produce a third answer.
    await new Promise((r) => setTimeout(r, 3000));
    expect(answers).toHaveLength(2);
    expect(completed.envelope.eventId).not.toBe(good.eventId);
    expect(EVENT_ID_HEADER).toBe('hm3-event-id');
  });
});
