// The score recorder on the in-process bus and store: answers of searches the store holds, and answers
// without a search id, are recorded (first writer wins); answers of a search the store does not hold are
// skipped, so an earlier run's or another deployment's events cannot stand in for an evaluation.
import { randomUUID } from 'node:crypto';
import { InProcessEventBus } from '@hm3/events';
import { common, events, TOPICS } from '@hm3/proto';
import { createInMemoryStore } from '@hm3/store';
import { afterEach, describe, expect, it } from 'vitest';
import { envelopeRecord } from './envelopes.js';
import { recorderMarkerId, startScoreRecorder } from './score-recorder.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function completed(candidateId: string, searchId: string, value: number): events.Envelope {
  return events.Envelope.fromPartial({
    eventId: randomUUID(),
    traceId: randomUUID(),
    candidateId,
    searchId,
    producer: 'test-evaluator',
    payload: {
      $case: 'evalCompleted',
      value: {
        scores: [
          { objective: 'math', metric: 'accuracy', split: common.Split.SEARCH, value, exampleCount: 8 },
        ],
        elapsedSeconds: 0.1,
      },
    },
  });
}

async function until(predicate: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('startScoreRecorder', () => {
  it('records the answers of searches the store holds and of requests without a search; skips other searches', async () => {
    const store = createInMemoryStore();
    await store.start();
    const bus = new InProcessEventBus({ topics: [{ name: TOPICS.EVAL_COMPLETED, partitions: 1 }] });
    await bus.start();
    stops.push(() => bus.close());
    const at = new Date();
    await store.searches.insert({
      id: 's-here',
      spec: {},
      state: 'RUNNING',
      round: 0,
      createdAt: at,
      updatedAt: at,
    });
    const recorder = await startScoreRecorder(bus, store.processedEvents, store.scores, {
      searches: store.searches,
    });
    stops.push(() => recorder.stop());

    const answers = [
      completed('c-here', 's-here', 0.5),
      completed('c-foreign', 's-elsewhere', 0.9),
      completed('c-adhoc', '', 0.25),
      completed('c-here', 's-here', 0.75), // a second answer: the first one stays
    ];
    await bus.publish(TOPICS.EVAL_COMPLETED, answers.map(envelopeRecord));
    await until(async () => {
      const marks = await Promise.all(
        answers.map((a) => store.processedEvents.has(recorderMarkerId(a.eventId))),
      );
      return marks.every(Boolean);
    });

    expect((await store.scores.get('c-here', 'math', 'search'))?.value).toBe(0.5);
    expect((await store.scores.get('c-adhoc', 'math', 'search'))?.value).toBe(0.25);
    expect(await store.scores.get('c-foreign', 'math', 'search')).toBeUndefined();
  });
});
