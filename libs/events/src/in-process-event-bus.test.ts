import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  eventually,
  describeEventBusContract,
  type CrashHarness,
  type CrashConsumerProgress,
} from './event-bus.contract.js';
import { startCrashConsumer, type CrashEffects } from './crash-consumer.test-helper.js';
import { InProcessEventBus } from './in-process-event-bus.js';
import type { ProcessedMarkers } from './idempotent-consumer.js';

/** The in-memory side of the crash test: effect documents, the counter, the processed markers. */
function inMemoryEffects() {
  const effects = new Map<string, { runId: string; value: number }>();
  const counters = new Map<string, { n: number; applied: Set<string> }>();
  const markers = new Map<string, string>();
  const store: CrashEffects = {
    async upsert(runId, eventId, value) {
      effects.set(eventId, { runId, value });
    },
    async countFirst(runId, eventId) {
      const counter = counters.get(runId)!;
      if (counter.applied.has(eventId)) return false;
      counter.applied.add(eventId);
      counter.n += 1;
      return true;
    },
  };
  const processed: ProcessedMarkers = {
    async has(eventId) {
      return markers.has(eventId);
    },
    async mark(eventId, consumer) {
      if (markers.has(eventId)) return false;
      markers.set(eventId, consumer);
      return true;
    },
  };
  return { effects, counters, store, processed };
}

function crashHookHarness(): CrashHarness {
  const db = inMemoryEffects();
  return {
    label: 'in-process crash hook',
    async prepare(runId) {
      db.counters.set(runId, { n: 0, applied: new Set() });
    },
    async start(spec, bus) {
      const inProcess = bus as InProcessEventBus;
      let markDead!: () => void;
      const dead = new Promise<void>((resolve) => (markDead = resolve));
      let alive = true;
      let progressOf: () => CrashConsumerProgress = () => ({
        handled: 0,
        applied: 0,
        reapplied: 0,
        redeliveries: 0,
      });
      let last = progressOf();
      const crash = () => {
        if (!alive) return;
        last = progressOf();
        alive = false;
        inProcess.crashConsumers(spec.groupId);
        markDead();
      };
      // The fault hook: the "process" dies here, so its handler never continues.
      const die = async () => {
        crash();
        await new Promise<never>(() => undefined);
      };
      const consumer = await startCrashConsumer(bus, db.processed, db.store, spec, die);
      progressOf = consumer.progress;
      return {
        progress: () => (alive ? consumer.progress() : last),
        async waitFor(predicate, timeoutMs) {
          return eventually(
            () => (predicate(consumer.progress()) ? consumer.progress() : undefined),
            timeoutMs,
            'crash consumer progress',
          );
        },
        dead,
        async kill() {
          crash();
        },
        async stop() {
          last = consumer.progress();
          alive = false;
          await consumer.subscription.stop();
          markDead();
        },
      };
    },
    async readEffects(runId) {
      const effects = [...db.effects]
        .filter(([, e]) => e.runId === runId)
        .map(([eventId, e]) => ({ eventId, value: e.value }));
      return { effects, counter: db.counters.get(runId)?.n ?? 0 };
    },
  };
}

describeEventBusContract(
  'in-process',
  async () => ({
    async createBus(topics) {
      const bus = new InProcessEventBus({
        topics,
        logger: pino({ level: process.env.HM3_LOG_LEVEL ?? 'error' }),
      });
      await bus.start();
      return bus;
    },
    crash: crashHookHarness(),
    disruption: {
      async disrupt(bus, groupId, resubscribe) {
        expect((bus as InProcessEventBus).crashConsumers(groupId)).toBe(1);
        await resubscribe();
      },
    },
    deliveryTimeoutMs: 10_000,
  }),
  { crash: 'in-process crash hook', disruption: 'consumer crash (crash hook)' },
);

describe('InProcessEventBus', () => {
  it('refuses to publish before start and validates topic specs', async () => {
    const bus = new InProcessEventBus();
    await expect(bus.publish('t', [])).rejects.toThrow(/not started/);
    await expect(new InProcessEventBus({ topics: [{ name: 'x', partitions: 0 }] }).start()).rejects.toThrow(
      /partitions/,
    );
  });

  it('a crash drops uncommitted work: the next member redelivers it', async () => {
    const bus = new InProcessEventBus({ topics: [{ name: 't', partitions: 1 }] });
    await bus.start();
    await bus.publish(
      't',
      Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: new Uint8Array([i]) })),
    );
    const first: number[] = [];
    await bus.subscribe(
      { groupId: 'g', topics: ['t'], commit: { everyMessages: 4, intervalMs: 60_000 } },
      async (e) => {
        first.push(e.value[0]!);
      },
    );
    await eventually(() => (first.length === 10 ? true : undefined), 5000, '10 deliveries');
    expect(await bus.lag('g', ['t'])).toEqual({ t: 2 });
    bus.crashConsumers('g');
    const second: number[] = [];
    const sub = await bus.subscribe({ groupId: 'g', topics: ['t'] }, async (e) => {
      second.push(e.value[0]!);
    });
    await eventually(() => (second.length === 2 ? true : undefined), 5000, 'redeliveries');
    expect(second).toEqual([8, 9]);
    await sub.stop();
    expect(await bus.lag('g', ['t'])).toEqual({ t: 0 });
    await bus.close();
  });
});
