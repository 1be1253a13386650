import { describe, expect, it } from 'vitest';
import { createInMemoryStore } from '@hm3/store';
import { eventually } from './event-bus.contract.js';
import { DEAD_LETTER_HEADERS, EVENT_ID_HEADER } from './event-bus.js';
import { consumeIdempotently, type ProcessedMarkers } from './idempotent-consumer.js';
import { InProcessEventBus } from './in-process-event-bus.js';

const value = (n: number) => new Uint8Array([n]);

async function setup() {
  const bus = new InProcessEventBus({ topics: [{ name: 'hm3.eval.requested', partitions: 2 }] });
  await bus.start();
  const store = createInMemoryStore();
  await store.start();
  // @hm3/store's repository satisfies the events lib's structural port.
  const markers: ProcessedMarkers = store.processedEvents;
  return { bus, store, markers };
}

describe('consumeIdempotently', () => {
  it('runs effect, then marker, then lets the bus commit; a redelivered event is skipped', async () => {
    const { bus, markers } = await setup();
    const steps: string[] = [];
    const recording: ProcessedMarkers = {
      has: (id) => markers.has(id),
      mark: async (id, consumer) => {
        steps.push(`mark:${id}`);
        return markers.mark(id, consumer);
      },
    };
    await bus.publish('hm3.eval.requested', [
      { key: 'c1', value: value(1), headers: { [EVENT_ID_HEADER]: 'e1' } },
      { key: 'c1', value: value(1), headers: { [EVENT_ID_HEADER]: 'e1' } },
    ]);
    const sub = await consumeIdempotently(
      bus,
      recording,
      {
        groupId: 'evaluator',
        topics: ['hm3.eval.requested'],
        consumerName: 'evaluator',
        hooks: {
          afterEffect: (_e, id) => void steps.push(`afterEffect:${id}`),
          afterMarker: (_e, id) => void steps.push(`afterMarker:${id}`),
        },
      },
      async (_event, id) => {
        steps.push(`effect:${id}`);
      },
    );
    await eventually(
      () => (sub.stats.applied + sub.stats.redeliveries === 2 ? true : undefined),
      5000,
      'both deliveries',
    );
    await sub.stop();
    expect(steps).toEqual(['effect:e1', 'afterEffect:e1', 'mark:e1', 'afterMarker:e1']);
    expect(sub.stats).toEqual({ applied: 1, redeliveries: 1 });
    expect(await markers.has('e1')).toBe(true);
    expect(await bus.lag('evaluator', ['hm3.eval.requested'])).toEqual({ 'hm3.eval.requested': 0 });
    await bus.close();
  });

  it('a failing effect leaves no marker, is retried, and is dead-lettered with the reason', async () => {
    const { bus, markers } = await setup();
    await bus.publish('hm3.eval.requested', [
      { key: 'c2', value: value(2), headers: { [EVENT_ID_HEADER]: 'e2' } },
    ]);
    let calls = 0;
    const sub = await consumeIdempotently(
      bus,
      markers,
      { groupId: 'g', topics: ['hm3.eval.requested'], consumerName: 'g', maxAttempts: 2 },
      async () => {
        calls += 1;
        throw new Error('scoring failed');
      },
    );
    await eventually(
      () => (bus.read('hm3.dead-letter').length === 1 ? true : undefined),
      5000,
      'the dead letter',
    );
    await sub.stop();
    expect(calls).toBe(2);
    expect(await markers.has('e2')).toBe(false);
    expect(bus.read('hm3.dead-letter')[0]!.headers[DEAD_LETTER_HEADERS.reason]).toBe('scoring failed');
    await bus.close();
  });

  it('an event without the hm3-event-id header is dead-lettered, never applied', async () => {
    const { bus, markers } = await setup();
    await bus.publish('hm3.eval.requested', [{ key: 'c3', value: value(3) }]);
    let applied = 0;
    const sub = await consumeIdempotently(
      bus,
      markers,
      { groupId: 'g', topics: ['hm3.eval.requested'], consumerName: 'g' },
      async () => {
        applied += 1;
      },
    );
    await eventually(
      () => (bus.read('hm3.dead-letter').length === 1 ? true : undefined),
      5000,
      'the dead letter',
    );
    await sub.stop();
    expect(applied).toBe(0);
    expect(bus.read('hm3.dead-letter')[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/hm3-event-id/);
    await bus.close();
  });

  it('takes a custom event id', async () => {
    const { bus, markers } = await setup();
    await bus.publish('hm3.eval.requested', [{ key: 'c4', value: value(4) }]);
    const ids: string[] = [];
    const sub = await consumeIdempotently(
      bus,
      markers,
      {
        groupId: 'g',
        topics: ['hm3.eval.requested'],
        consumerName: 'g',
        eventId: (e) => `${e.key}@${e.offset}`,
      },
      async (_e, id) => void ids.push(id),
    );
    await eventually(() => (ids.length === 1 ? true : undefined), 5000, 'the delivery');
    await sub.stop();
    expect(ids).toEqual(['c4@0']);
    expect(await markers.has('c4@0')).toBe(true);
    await bus.close();
  });
});
