// The Kafka path against the real servers (@hm3/infra's global setup): eval.requested is evaluated and
// answered with eval.completed (scores recorded in FerretDB through the official driver); bad input and
// a passed deadline are answered with eval.failed; a (candidate, objective, split) already scored is
// answered from the store; a redelivered request is not evaluated again; the score recorder writes
// the scores of completed events from any evaluator.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KafkaEventBus, type Subscription } from '@hm3/events';
import { zooRoot } from '@hm3/fixtures';
import { common, events, TOPICS } from '@hm3/proto';
import { createLogger } from '@hm3/service-kit';
import { createMongoStore, LocalArtifactStore, type MongoStore } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envelopeRecord, evalRequestedEnvelope, publishEvalRequest } from './envelopes.js';
import { startEvalConsumer, type EvalTopics } from './eval-consumer.js';
import { Evaluator } from './evaluator.js';
import { startScoreRecorder } from './score-recorder.js';

const run = randomUUID().slice(0, 8);
const topics: EvalTopics = {
  requested: `test.ev.${run}.eval.requested`,
  completed: `test.ev.${run}.eval.completed`,
  failed: `test.ev.${run}.eval.failed`,
};
const logger = createLogger({ level: 'silent', name: 'eval-consumer-test' });

let dir: string;
let store: MongoStore;
let bus: KafkaEventBus;
let core: Evaluator;
const subscriptions: Subscription[] = [];
const answers: { topic: string; key: string; envelope: events.Envelope }[] = [];

const math = common.Objective.fromPartial({ name: 'math', task: 'math', maxExamples: 20 });
const target = { $case: 'model' as const, value: { uri: 'base', modelId: '' } };

async function waitFor(predicate: () => boolean, ms = 90_000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('timed out waiting for the answers');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const answerTo = (eventId: string) => answers.find((a) => a.envelope.causationId === eventId);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-eval-consumer-'));
  store = createMongoStore({
    url: process.env['HM3_MONGO_URL'] ?? 'mongodb://127.0.0.1:27017',
    database: `hm3_ev_${run}`,
  });
  await store.start();
  bus = new KafkaEventBus({
    brokers: (process.env['HM3_KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(','),
    clientId: `evaluator-test-${run}`,
    topics: Object.values(topics).map((name) => ({ name, partitions: 1 })),
    logger,
  });
  await bus.start();
  core = new Evaluator({
    store,
    artifacts: new LocalArtifactStore(path.join(dir, 'artifacts')),
    modelsRoot: zooRoot,
    datasetRoots: [],
    intraOpThreads: 1,
  });
  subscriptions.push(
    await startEvalConsumer(bus, store.processedEvents, core, { groupId: `ev-${run}`, topics }),
  );
  subscriptions.push(
    await startScoreRecorder(bus, store.processedEvents, store.scores, {
      groupId: `ev-rec-${run}`,
      topic: topics.completed,
    }),
  );
  subscriptions.push(
    await bus.subscribe(
      { groupId: `ev-answers-${run}`, topics: [topics.completed, topics.failed] },
      async (e) => {
        answers.push({ topic: e.topic, key: e.key, envelope: events.Envelope.decode(e.value) });
      },
    ),
  );
});

afterAll(async () => {
  for (const s of subscriptions) await s.stop();
  await bus?.close();
  await core?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('evaluation requests over Kafka', () => {
  it('evaluates on eval.requested and answers eval.completed; the score is in the store; a redelivery is skipped', async () => {
    const request = await publishEvalRequest(
      bus,
      { candidateId: 'cand-a', searchId: 'search-1', traceId: 'trace-a', target, objectives: [math] },
      topics.requested,
    );
    await waitFor(() => answerTo(request.eventId) !== undefined);
    const answer = answerTo(request.eventId)!;
    expect(answer.topic).toBe(topics.completed);
    expect(answer.key).toBe('cand-a');
    expect(answer.envelope).toMatchObject({
      type: TOPICS.EVAL_COMPLETED,
      traceId: 'trace-a',
      searchId: 'search-1',
      candidateId: 'cand-a',
      producer: 'evaluator',
    });
    const completed = answer.envelope.payload!.value as events.EvalCompleted;
    expect(completed.scores).toHaveLength(1);
    expect(completed.scores[0]).toMatchObject({
      objective: 'math',
      metric: 'exact_match',
      split: common.Split.SEARCH,
      exampleCount: 20,
    });
    const stored = await store.scores.get('cand-a', 'math', 'search');
    expect(stored?.value).toBe(completed.scores[0]!.value);
    expect(stored?.searchId).toBe('search-1');
    expect(await store.processedEvents.has(request.eventId)).toBe(true);

    // The same event again (at-least-once delivery): its marker is there, so nothing is redone.
    await bus.publish(topics.requested, [envelopeRecord(request)]);
    // A new request for the same (candidate, objective, split): answered from the store.
    const again = await publishEvalRequest(
      bus,
      { candidateId: 'cand-a', target, objectives: [math] },
      topics.requested,
    );
    await waitFor(() => answerTo(again.eventId) !== undefined);
    const second = answerTo(again.eventId)!.envelope.payload!.value as events.EvalCompleted;
    expect(second.scores).toEqual(completed.scores);
    expect((await store.scores.get('cand-a', 'math', 'search'))?.createdAt).toEqual(stored?.createdAt);
    await new Promise((r) => setTimeout(r, 2000));
    expect(answers.filter((a) => a.envelope.causationId === request.eventId)).toHaveLength(1);
  });

  it('answers eval.failed for bad input (INVALID_ARGUMENT) and for a passed deadline (DEADLINE_EXCEEDED)', async () => {
    const bad = await publishEvalRequest(
      bus,
      { candidateId: 'cand-bad', target, objectives: [{ ...math, metric: 'bleu' }] },
      topics.requested,
    );
    const late = evalRequestedEnvelope({
      candidateId: 'cand-late',
      target,
      objectives: [math],
      deadline: new Date(Date.now() - 1000),
    });
    await bus.publish(topics.requested, [envelopeRecord(late)]);
    await waitFor(() => answerTo(bad.eventId) !== undefined && answerTo(late.eventId) !== undefined);
    const badAnswer = answerTo(bad.eventId)!;
    expect(badAnswer.topic).toBe(topics.failed);
    expect(badAnswer.envelope.payload!.value).toMatchObject({
      failure: { code: 'INVALID_ARGUMENT', retryable: false },
    });
    expect((badAnswer.envelope.payload!.value as events.EvalFailed).failure?.message).toContain(
      'unknown metric "bleu"',
    );
    const lateAnswer = answerTo(late.eventId)!;
    expect(lateAnswer.topic).toBe(topics.failed);
    expect(lateAnswer.envelope.payload!.value).toMatchObject({
      failure: { code: 'DEADLINE_EXCEEDED', retryable: true },
    });
    expect(await store.scores.get('cand-late', 'math', 'search')).toBeUndefined();
  });

  it("records the scores of another evaluator's eval.completed, first writer wins", async () => {
    const external: events.Envelope = {
      eventId: randomUUID(),
      schemaVersion: 1,
      type: TOPICS.EVAL_COMPLETED,
      occurredAt: new Date(),
      traceId: 'trace-x',
      searchId: 'search-x',
      candidateId: 'cand-x',
      causationId: randomUUID(),
      producer: 'someone-else',
      payload: {
        $case: 'evalCompleted',
        value: {
          scores: [
            {
              objective: 'math',
              metric: 'exact_match',
              split: common.Split.HELDOUT,
              value: 0.5,
              exampleCount: 10,
            },
            {
              objective: 'code',
              metric: 'exact_match',
              split: common.Split.FULL,
              value: 0.9,
              exampleCount: 10,
            },
          ],
          elapsedSeconds: 1,
        },
      },
    };
    await bus.publish(topics.completed, [envelopeRecord(external)]);
    await waitFor(() => answers.some((a) => a.envelope.eventId === external.eventId));
    const until = Date.now() + 30_000;
    while (!(await store.scores.get('cand-x', 'math', 'heldout')) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const stored = await store.scores.get('cand-x', 'math', 'heldout');
    expect(stored).toMatchObject({ value: 0.5, searchId: 'search-x', details: { producer: 'someone-else' } });
    const rewrite = { ...external, eventId: randomUUID() };
    (rewrite.payload!.value as events.EvalCompleted).scores[0]!.value = 0.1;
    await bus.publish(topics.completed, [envelopeRecord(rewrite)]);
    await waitFor(() => answers.some((a) => a.envelope.eventId === rewrite.eventId));
    await new Promise((r) => setTimeout(r, 2000));
    expect((await store.scores.get('cand-x', 'math', 'heldout'))?.value).toBe(0.5);
  });
});
