/**
 * THE contract suite of the EventBus port: every adapter's test file calls
 * `describeEventBusContract(name, factory)` and so runs these same tests (see STYLE.md).
 * Only the means of crashing a consumer and of disrupting the transport differ per adapter; they
 * come from the fixture.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEAD_LETTER_HEADERS,
  DEFAULT_DEAD_LETTER_TOPIC,
  EVENT_ID_HEADER,
  type CommitCadence,
  type DeliveredEvent,
  type EventBus,
  type Subscription,
  type TopicSpec,
} from './event-bus.js';

/** A consumer that can die: a child process (Kafka) or a group crashed by the crash hook (in-process). */
export interface CrashConsumerSpec {
  runId: string;
  topic: string;
  groupId: string;
  commit: CommitCadence;
  /** Each effect first waits this long, so that a kill from outside lands mid-stream. */
  throttleMs?: number;
  /** The consumer kills itself at its `at`-th effect of this run, after the effect or after the marker. */
  fault?: { point: 'after-effect' | 'after-marker'; at: number };
}

export interface CrashConsumerProgress {
  /** Events this run finished (applied or skipped). */
  handled: number;
  /** Effects run (first applications and re-applications). */
  applied: number;
  /** Effects run again for an event whose effect was already there (marker missing). */
  reapplied: number;
  /** Events skipped because their marker was there. */
  redeliveries: number;
}

export interface CrashConsumerRun {
  /** The latest progress the consumer reported. */
  progress(): CrashConsumerProgress;
  waitFor(
    predicate: (p: CrashConsumerProgress) => boolean,
    timeoutMs: number,
  ): Promise<CrashConsumerProgress>;
  /** Settles when the consumer died (its fault hook, or kill()). */
  readonly dead: Promise<void>;
  /** Kills it now, as SIGKILL would: nothing more is committed. */
  kill(): Promise<void>;
  /** Stops it gracefully (commits what it completed). */
  stop(): Promise<void>;
}

export interface CrashHarness {
  /** How a crash happens, for the log line. */
  readonly label: string;
  /** Prepares the effect store for a run (the counter document). */
  prepare(runId: string): Promise<void>;
  start(spec: CrashConsumerSpec, bus: EventBus): Promise<CrashConsumerRun>;
  /** The effect documents of a run and its first-application counter. */
  readEffects(
    runId: string,
  ): Promise<{ effects: Array<{ eventId: string; value: number }>; counter: number }>;
}

export interface EventBusContractFixture {
  /** A started bus (a new client of the same broker, for Kafka) with these topics created. */
  createBus(topics: TopicSpec[]): Promise<EventBus>;
  crash: CrashHarness;
  /**
   * Disrupts the transport under a running subscription and returns once it is over: Kafka restarts
   * the broker; in-process crashes the group and subscribes again (its only failure mode).
   */
  disruption: {
    disrupt(bus: EventBus, groupId: string, resubscribe: () => Promise<Subscription>): Promise<void>;
  };
  /** How long a test waits for deliveries. */
  deliveryTimeoutMs: number;
  /** Called once after the suite (close clients, servers). */
  teardown?(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const json = (value: unknown) => encoder.encode(JSON.stringify(value));
const parse = (event: DeliveredEvent) => JSON.parse(decoder.decode(event.value)) as Record<string, unknown>;

/** Test-name labels, known before the fixture is built (vitest collects names first). */
export interface ContractLabels {
  /** How a consumer crashes: "SIGKILLed child process", "crash hook". */
  crash: string;
  /** The transport disruption: "broker restart", "consumer crash". */
  disruption: string;
}

export function describeEventBusContract(
  name: string,
  factory: () => Promise<EventBusContractFixture>,
  labels: ContractLabels,
): void {
  describe(`EventBus contract [${name}]`, () => {
    let fixture: EventBusContractFixture;
    const buses: EventBus[] = [];
    const newBus = async (topics: TopicSpec[]) => {
      const bus = await fixture.createBus(topics);
      buses.push(bus);
      return bus;
    };
    const wait = <T>(check: () => T | undefined | Promise<T | undefined>, what: string) =>
      eventually(check, fixture.deliveryTimeoutMs, what);

    beforeAll(async () => {
      fixture = await factory();
    });
    afterAll(async () => {
      for (const bus of buses.splice(0)) await bus.close();
      await fixture?.teardown?.();
    });

    it('delivers published records with key, value and headers intact', async () => {
      const topic = `t.roundtrip.${uniqueSuffix()}`;
      const bus = await newBus([{ name: topic, partitions: 1 }]);
      await bus.publish(topic, [
        { key: 'k1', value: json({ n: 1 }), headers: { [EVENT_ID_HEADER]: 'e1', 'hm3-trace-id': 'trace-1' } },
        { key: 'k2', value: new Uint8Array([0, 255, 7]), headers: { [EVENT_ID_HEADER]: 'e2' } },
      ]);
      const got: DeliveredEvent[] = [];
      const sub = await bus.subscribe(
        { groupId: `g.roundtrip.${uniqueSuffix()}`, topics: [topic] },
        async (e) => {
          got.push(e);
        },
      );
      await wait(() => (got.length >= 2 ? true : undefined), '2 deliveries');
      await sub.stop();
      expect(got.map((e) => [e.topic, e.partition, e.offset, e.key, e.attempt])).toEqual([
        [topic, 0, '0', 'k1', 1],
        [topic, 0, '1', 'k2', 1],
      ]);
      expect(parse(got[0]!)).toEqual({ n: 1 });
      expect([...got[1]!.value]).toEqual([0, 255, 7]);
      expect(got[0]!.headers).toEqual({ [EVENT_ID_HEADER]: 'e1', 'hm3-trace-id': 'trace-1' });
      expect(got[1]!.headers).toEqual({ [EVENT_ID_HEADER]: 'e2' });
    });

    it('keeps each key in order: 5 keys x 50 messages over 3 partitions', async () => {
      const topic = `t.order.${uniqueSuffix()}`;
      const bus = await newBus([{ name: topic, partitions: 3 }]);
      const keys = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
      for (let batch = 0; batch < 5; batch++) {
        const records = [];
        for (let i = batch * 10; i < batch * 10 + 10; i++)
          for (const key of keys) records.push({ key, value: json({ key, seq: i }) });
        await bus.publish(topic, records);
      }
      const seen = new Map<string, number[]>();
      const partitionOf = new Map<string, Set<number>>();
      let total = 0;
      const sub = await bus.subscribe(
        { groupId: `g.order.${uniqueSuffix()}`, topics: [topic] },
        async (e) => {
          const { key, seq } = parse(e) as { key: string; seq: number };
          seen.set(key, [...(seen.get(key) ?? []), seq]);
          partitionOf.set(key, (partitionOf.get(key) ?? new Set()).add(e.partition));
          total += 1;
        },
      );
      await wait(() => (total >= 250 ? true : undefined), '250 deliveries');
      await sub.stop();
      for (const key of keys) {
        expect(seen.get(key), key).toEqual(Array.from({ length: 50 }, (_, i) => i));
        expect(partitionOf.get(key)?.size, key).toBe(1);
      }
      expect(new Set([...partitionOf.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
    });

    it('shares partitions between two consumers of one group, and gives every group everything', async () => {
      const topic = `t.groups.${uniqueSuffix()}`;
      const bus = await newBus([{ name: topic, partitions: 3 }]);
      const group = `g.shared.${uniqueSuffix()}`;
      const other = `g.other.${uniqueSuffix()}`;
      type Seen = { id: string; partition: number };
      const a: Seen[] = [];
      const b: Seen[] = [];
      const c: Seen[] = [];
      const record = (into: Seen[]) => async (e: DeliveredEvent) => {
        into.push({ id: String(parse(e).id), partition: e.partition });
      };
      const subA = await bus.subscribe({ groupId: group, topics: [topic] }, record(a));
      const subB = await bus.subscribe({ groupId: group, topics: [topic] }, record(b));
      const subC = await bus.subscribe({ groupId: other, topics: [topic] }, record(c));
      // Warm up until both members of the group have received something: the group is then stable.
      let warm = 0;
      await wait(async () => {
        if (a.length > 0 && b.length > 0) return true;
        await bus.publish(
          topic,
          Array.from({ length: 12 }, (_, i) => ({
            key: `warm-${warm}-${i}`,
            value: json({ id: `warm-${warm}-${i}` }),
          })),
        );
        warm += 1;
        await new Promise((resolve) => setTimeout(resolve, 400));
        return undefined;
      }, 'both members of the group to receive');
      const ids = Array.from({ length: 60 }, (_, i) => `real-${i}`);
      await bus.publish(
        topic,
        ids.map((id) => ({ key: id, value: json({ id }) })),
      );
      const real = (list: Seen[]) => list.filter((s) => s.id.startsWith('real-'));
      await wait(
        () =>
          new Set([...real(a), ...real(b)].map((s) => s.id)).size >= 60 && real(c).length >= 60
            ? true
            : undefined,
        'all 60 in both groups',
      );
      await Promise.all([subA.stop(), subB.stop(), subC.stop()]);
      const partitionsA = new Set(real(a).map((s) => s.partition));
      const partitionsB = new Set(real(b).map((s) => s.partition));
      expect(real(a).length).toBeGreaterThan(0);
      expect(real(b).length).toBeGreaterThan(0);
      expect([...partitionsA].filter((p) => partitionsB.has(p))).toEqual([]);
      expect(new Set([...partitionsA, ...partitionsB])).toEqual(new Set([0, 1, 2]));
      expect(real(a).length + real(b).length).toBe(60);
      expect(new Set(real(c).map((s) => s.id))).toEqual(new Set(ids));
    });

    it('retries a failing handler, then dead-letters the event to hm3.dead-letter and moves on', async () => {
      const topic = `t.poison.${uniqueSuffix()}`;
      const bus = await newBus([{ name: topic, partitions: 1 }]);
      const group = `g.poison.${uniqueSuffix()}`;
      const reason = `cannot process ${uniqueSuffix()}`;
      await bus.publish(topic, [
        { key: 'bad', value: json({ poison: true }), headers: { [EVENT_ID_HEADER]: 'poison-1' } },
        { key: 'bad', value: json({ poison: false }), headers: { [EVENT_ID_HEADER]: 'good-1' } },
      ]);
      const attempts: number[] = [];
      const handled: string[] = [];
      const sub = await bus.subscribe({ groupId: group, topics: [topic], maxAttempts: 3 }, async (e) => {
        if (parse(e).poison) {
          attempts.push(e.attempt);
          throw new Error(reason);
        }
        handled.push(e.headers[EVENT_ID_HEADER]!);
      });
      const dead: DeliveredEvent[] = [];
      const deadSub = await bus.subscribe(
        { groupId: `g.dlq.${uniqueSuffix()}`, topics: [DEFAULT_DEAD_LETTER_TOPIC] },
        async (e) => {
          if (e.headers[DEAD_LETTER_HEADERS.sourceTopic] === topic) dead.push(e);
        },
      );
      await wait(
        () => (handled.length >= 1 && dead.length >= 1 ? true : undefined),
        'the dead letter and the next event',
      );
      await wait(
        async () => ((await sub.lag())[topic] === 0 ? true : undefined),
        'the group to commit past the poison event',
      );
      await Promise.all([sub.stop(), deadSub.stop()]);
      expect(attempts).toEqual([1, 2, 3]);
      expect(handled).toEqual(['good-1']);
      expect(dead).toHaveLength(1);
      const letter = dead[0]!;
      expect(letter.key).toBe('bad');
      expect(parse(letter)).toEqual({ poison: true });
      expect(letter.headers).toMatchObject({
        [EVENT_ID_HEADER]: 'poison-1',
        [DEAD_LETTER_HEADERS.reason]: reason,
        [DEAD_LETTER_HEADERS.sourceTopic]: topic,
        [DEAD_LETTER_HEADERS.sourcePartition]: '0',
        [DEAD_LETTER_HEADERS.sourceOffset]: '0',
        [DEAD_LETTER_HEADERS.consumerGroup]: group,
        [DEAD_LETTER_HEADERS.attempts]: '3',
      });
    });

    it('reports lag: M published with no consumer -> M; after consuming -> 0', async () => {
      const topic = `t.lag.${uniqueSuffix()}`;
      const bus = await newBus([{ name: topic, partitions: 2 }]);
      const group = `g.lag.${uniqueSuffix()}`;
      const m = 37;
      await bus.publish(
        topic,
        Array.from({ length: m }, (_, i) => ({ key: `k${i}`, value: json({ i }) })),
      );
      expect(await bus.lag(group, [topic])).toEqual({ [topic]: m });
      let count = 0;
      const sub = await bus.subscribe(
        { groupId: group, topics: [topic], commit: { everyMessages: 10, intervalMs: 200 } },
        async () => {
          count += 1;
        },
      );
      await wait(() => (count >= m ? true : undefined), `${m} deliveries`);
      await wait(async () => ((await sub.lag())[topic] === 0 ? true : undefined), 'subscription lag 0');
      expect(await bus.lag(group, [topic])).toEqual({ [topic]: 0 });
      await sub.stop();
      await bus.publish(topic, [{ key: 'late', value: json({ late: true }) }]);
      expect(await bus.lag(group, [topic])).toEqual({ [topic]: 1 });
    });

    it(`redelivers after a crash (${labels.crash}) and applies every effect exactly once (3 crash points)`, async () => {
      const { crash } = fixture;
      const n = 300;
      const runId = `crash-${uniqueSuffix()}`;
      const topic = `t.crash.${runId}`;
      const group = `g.crash.${runId}`;
      const bus = await newBus([{ name: topic, partitions: 3 }]);
      await crash.prepare(runId);
      const value = (i: number) => i * 7 + 1;
      for (let start = 0; start < n; start += 100) {
        await bus.publish(
          topic,
          Array.from({ length: 100 }, (_, j) => start + j).map((i) => ({
            key: `cand-${i % 17}`,
            value: json({ value: value(i) }),
            headers: { [EVENT_ID_HEADER]: `${runId}-${i}` },
          })),
        );
      }
      const totals: CrashConsumerProgress = { handled: 0, applied: 0, reapplied: 0, redeliveries: 0 };
      const add = (p: CrashConsumerProgress) => {
        for (const k of Object.keys(totals) as Array<keyof CrashConsumerProgress>) totals[k] += p[k];
      };
      const timeout = fixture.deliveryTimeoutMs;
      // HM3_DEBUG_CONTRACT=1 prints each run's progress.
      const dbg = (line: string) => process.env.HM3_DEBUG_CONTRACT && console.log(line);

      // Crash 1: killed from outside while >= 100 delivered events are uncommitted.
      const slow = { everyMessages: 100_000, intervalMs: 600_000 };
      const run1 = await crash.start({ runId, topic, groupId: group, commit: slow, throttleMs: 15 }, bus);
      const before = await run1.waitFor((p) => p.handled >= 130, timeout);
      dbg(`run1 ${JSON.stringify(before)}`);
      await run1.kill();
      const committedAfterKill = n - (await bus.lag(group, [topic]))[topic]!;
      const uncommittedAtKill = before.handled - committedAfterKill;
      expect(uncommittedAtKill).toBeGreaterThanOrEqual(100);
      add(run1.progress());

      // Crash 2: dies between the effect and the processed marker.
      const quick = { everyMessages: 10, intervalMs: 300 };
      const run2 = await crash.start(
        { runId, topic, groupId: group, commit: quick, fault: { point: 'after-effect', at: 20 } },
        bus,
      );
      await run2.dead;
      dbg(`run2 ${JSON.stringify(run2.progress())}`);
      add(run2.progress());

      // Crash 3: dies between the processed marker and the offset commit.
      const run3 = await crash.start(
        { runId, topic, groupId: group, commit: quick, fault: { point: 'after-marker', at: 20 } },
        bus,
      );
      await run3.dead;
      dbg(`run3 ${JSON.stringify(run3.progress())}`);
      add(run3.progress());

      // Restart: runs until the group has committed everything.
      const run4 = await crash.start({ runId, topic, groupId: group, commit: quick }, bus);
      await eventually(
        async () => ((await bus.lag(group, [topic]))[topic] === 0 ? true : undefined),
        timeout * 2,
        'lag 0 after the restart',
      );
      await run4.stop();
      add(run4.progress());

      const redeliveries = totals.redeliveries + totals.reapplied;
      console.log(
        `[${name}] crash test (${crash.label}): ${n} events, ${uncommittedAtKill} uncommitted at the SIGKILL, ` +
          `${redeliveries} redeliveries (${totals.redeliveries} skipped by marker, ${totals.reapplied} effects re-applied), ${totals.applied} effect runs`,
      );
      expect(redeliveries).toBeGreaterThan(0);
      expect(totals.redeliveries).toBeGreaterThan(0);
      expect(totals.reapplied).toBeGreaterThan(0);

      const { effects, counter } = await crash.readEffects(runId);
      const byId = new Map<string, number[]>();
      for (const e of effects) byId.set(e.eventId, [...(byId.get(e.eventId) ?? []), e.value]);
      const missing = Array.from({ length: n }, (_, i) => `${runId}-${i}`).filter((id) => !byId.has(id));
      expect(missing, 'no event lost').toEqual([]);
      expect(effects).toHaveLength(n);
      for (let i = 0; i < n; i++)
        expect(byId.get(`${runId}-${i}`), `effect of event ${i}`).toEqual([value(i)]);
      expect(counter, 'first applications').toBe(n);
    }, 300_000);

    it(`keeps consuming across a ${labels.disruption}`, async () => {
      const topic = `t.disrupt.${uniqueSuffix()}`;
      const bus = await newBus([{ name: topic, partitions: 1 }]);
      const group = `g.disrupt.${uniqueSuffix()}`;
      const got = new Set<string>();
      const handler = async (e: DeliveredEvent) => {
        got.add(String(parse(e).id));
      };
      const subscribe = () =>
        bus.subscribe(
          { groupId: group, topics: [topic], commit: { everyMessages: 1, intervalMs: 100 } },
          handler,
        );
      let sub = await subscribe();
      await bus.publish(topic, [{ key: 'k', value: json({ id: 'before' }) }]);
      await wait(() => (got.has('before') ? true : undefined), 'the event before the disruption');
      await fixture.disruption.disrupt(bus, group, async () => {
        sub = await subscribe();
        return sub;
      });
      const after = Array.from({ length: 5 }, (_, i) => `after-${i}`);
      await bus.publish(
        topic,
        after.map((id) => ({ key: 'k', value: json({ id }) })),
      );
      await eventually(
        () => (after.every((id) => got.has(id)) ? true : undefined),
        fixture.deliveryTimeoutMs * 2,
        'the events after the disruption',
      );
      await sub.stop();
    }, 240_000);
  });
}
