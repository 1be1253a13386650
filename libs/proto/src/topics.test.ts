import { describe, expect, it } from 'vitest';
import { events, TOPIC_BY_PAYLOAD, TOPIC_NAME_BY_TOPIC, TOPIC_NAMES, TOPICS } from './index.js';

const EXPECTED = [
  'hm3.merge.requested',
  'hm3.merge.completed',
  'hm3.merge.failed',
  'hm3.eval.requested',
  'hm3.eval.completed',
  'hm3.eval.failed',
  'hm3.round.completed',
  'hm3.front.updated',
  'hm3.dead-letter',
];

describe('topic constants generated from events.proto', () => {
  it('list exactly the nine topic names, once each', () => {
    expect([...TOPIC_NAMES]).toEqual(EXPECTED);
    expect(new Set(TOPIC_NAMES).size).toBe(9);
    expect(Object.values(TOPICS)).toEqual(EXPECTED);
  });

  it('name every Topic enum value except the zero value', () => {
    const members = Object.values(events.Topic).filter(
      (v): v is events.Topic =>
        typeof v === 'number' && v !== events.Topic.UNSPECIFIED && v !== events.Topic.UNRECOGNIZED,
    );
    expect(members).toHaveLength(9);
    expect(members.map((m) => TOPIC_NAME_BY_TOPIC[m as keyof typeof TOPIC_NAME_BY_TOPIC])).toEqual(EXPECTED);
    expect(TOPIC_NAME_BY_TOPIC[events.Topic.EVAL_REQUESTED]).toBe('hm3.eval.requested');
  });

  it('route each Envelope payload to its own topic', () => {
    expect(TOPIC_BY_PAYLOAD).toEqual({
      mergeRequested: 'hm3.merge.requested',
      mergeCompleted: 'hm3.merge.completed',
      mergeFailed: 'hm3.merge.failed',
      evalRequested: 'hm3.eval.requested',
      evalCompleted: 'hm3.eval.completed',
      evalFailed: 'hm3.eval.failed',
      roundCompleted: 'hm3.round.completed',
      frontUpdated: 'hm3.front.updated',
      deadLettered: 'hm3.dead-letter',
    });
  });
});
