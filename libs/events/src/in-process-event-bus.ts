import { pino, type Logger } from 'pino';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { CommitTracker } from './commit-tracker.js';
import { deliverWithRetries } from './delivery.js';
import {
  DEFAULT_DEAD_LETTER_TOPIC,
  DEFAULT_MAX_ATTEMPTS,
  type EventBus,
  type EventHandler,
  type EventHeaders,
  type PublishRecord,
  type SubscribeOptions,
  type Subscription,
  type TopicSpec,
} from './event-bus.js';
import { partitionForKey } from './partitioner.js';

/**
 * The in-process adapter of the EventBus port: the embedded mode's bus, and the adapter the
 * contract suite runs without a broker. It keeps Kafka's semantics, not just its API: topics have
 * partitions (key hash -> partition, the same murmur2 as Kafka), consumer groups share partitions
 * (round robin over members, rebalanced on join and leave), each group commits offsets per
 * partition on the same cadence as the Kafka adapter, delivery is at-least-once with retries and
 * dead-lettering, and `crashConsumers` simulates a process dying: uncommitted work is redelivered.
 */
export interface InProcessEventBusOptions {
  /** Topics created on start; others are created on first use with `defaultPartitions`. */
  topics?: TopicSpec[];
  defaultPartitions?: number;
  /** Handler retry backoff: attempt n+1 waits `retryBackoffMs * n`. Default 20 ms. */
  retryBackoffMs?: number;
  logger?: Logger;
}

interface StoredRecord {
  key: string;
  value: Uint8Array;
  headers: EventHeaders;
}

interface Member {
  readonly id: number;
  readonly options: Required<
    Pick<SubscribeOptions, 'groupId' | 'topics' | 'fromBeginning' | 'maxAttempts' | 'deadLetterTopic'>
  >;
  readonly handler: EventHandler;
  readonly tracker: CommitTracker;
  /** Assigned partitions and the next offset to deliver in each. */
  positions: Map<string, number>;
  active: boolean;
  crashed: boolean;
  /** The loop's promise; settles when the member stopped consuming. */
  loop?: Promise<void>;
  /** Resolves when the current delivery (if any) finished. */
  inFlight?: Promise<unknown>;
  cursor: number;
  timer?: NodeJS.Timeout;
}

interface NextRecord {
  tp: string;
  topic: string;
  partition: number;
  offset: number;
  record: StoredRecord;
}

interface Group {
  committed: Map<string, number>;
  members: Member[];
  /** Rebalances run in this chain; members do not start new events while one is pending. */
  chain: Promise<void>;
  pendingRebalances: number;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;
const splitTp = (key: string): [string, number] => {
  const i = key.lastIndexOf('\u0000');
  return [key.slice(0, i), Number(key.slice(i + 1))];
};

export class InProcessEventBus implements EventBus {
  private readonly topics = new Map<string, StoredRecord[][]>();
  private readonly groups = new Map<string, Group>();
  private readonly wakers = new Set<() => void>();
  private readonly logger: Logger;
  private readonly defaultPartitions: number;
  private readonly retryBackoffMs: number;
  private nextMemberId = 1;
  private started = false;

  constructor(private readonly options: InProcessEventBusOptions = {}) {
    this.logger = options.logger ?? pino({ name: 'hm3-events', level: process.env.HM3_LOG_LEVEL ?? 'warn' });
    this.defaultPartitions = options.defaultPartitions ?? 1;
    this.retryBackoffMs = options.retryBackoffMs ?? 20;
  }

  async start(): Promise<void> {
    for (const spec of this.options.topics ?? []) this.ensureTopic(spec.name, spec.partitions);
    this.started = true;
  }

  async publish(topic: string, records: PublishRecord[]): Promise<void> {
    this.assertStarted();
    const partitions = this.ensureTopic(topic);
    for (const record of records) {
      if (typeof record.key !== 'string')
        throw new InvalidArgumentError('record key must be a string', { topic });
      const partition = partitionForKey(record.key, partitions.length);
      partitions[partition]!.push({
        key: record.key,
        value: Uint8Array.from(record.value),
        headers: { ...record.headers },
      });
    }
    this.wake();
  }

  async subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
    this.assertStarted();
    if (options.topics.length === 0)
      throw new InvalidArgumentError('subscribe needs at least one topic', { groupId: options.groupId });
    for (const topic of options.topics) this.ensureTopic(topic);
    const member: Member = {
      id: this.nextMemberId++,
      options: {
        groupId: options.groupId,
        topics: [...options.topics],
        fromBeginning: options.fromBeginning ?? true,
        maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        deadLetterTopic: options.deadLetterTopic ?? DEFAULT_DEAD_LETTER_TOPIC,
      },
      handler,
      tracker: new CommitTracker(options.commit),
      positions: new Map(),
      active: true,
      crashed: false,
      cursor: 0,
    };
    const group = this.group(options.groupId);
    group.members.push(member);
    await this.rebalance(options.groupId);
    member.loop = this.run(member);
    member.timer = setInterval(
      () => {
        if (member.active && !member.crashed && member.tracker.isDue()) this.commit(member);
      },
      Math.max(5, Math.floor(member.tracker.intervalMs / 2)),
    );
    member.timer.unref();
    return {
      groupId: options.groupId,
      stop: () => this.stopMember(member),
      lag: () => this.lag(options.groupId, options.topics),
    };
  }

  async lag(groupId: string, topics: string[]): Promise<Record<string, number>> {
    const committed = this.groups.get(groupId)?.committed;
    const result: Record<string, number> = {};
    for (const topic of topics) {
      const partitions = this.topics.get(topic) ?? [];
      result[topic] = partitions.reduce(
        (sum, log, p) => sum + log.length - (committed?.get(tpKey(topic, p)) ?? 0),
        0,
      );
    }
    return result;
  }

  /**
   * Simulates the death of every consumer process of `groupId`: nothing they completed since their
   * last commit is committed, their in-flight handlers' results are ignored, and their partitions go
   * to the group's next members, which resume from the committed offsets (redelivering).
   */
  crashConsumers(groupId: string): number {
    const group = this.groups.get(groupId);
    if (!group) return 0;
    const crashed = group.members.filter((m) => m.active);
    for (const member of crashed) {
      member.crashed = true;
      member.active = false;
      member.tracker.clear();
      member.positions.clear();
      member.inFlight = undefined;
      clearInterval(member.timer);
    }
    group.members = group.members.filter((m) => !crashed.includes(m));
    this.wake();
    this.logger.warn({ group: groupId, members: crashed.length }, 'consumers crashed (simulated)');
    void this.rebalance(groupId);
    return crashed.length;
  }

  /** The log of a topic, for tests and the embedded mode's inspection (copies). */
  read(topic: string): Array<StoredRecord & { partition: number; offset: string }> {
    const partitions = this.topics.get(topic) ?? [];
    return partitions.flatMap((log, partition) =>
      log.map((r, offset) => ({ ...r, headers: { ...r.headers }, partition, offset: String(offset) })),
    );
  }

  async close(): Promise<void> {
    const members = [...this.groups.values()].flatMap((g) => g.members);
    await Promise.all(members.map((m) => this.stopMember(m)));
    this.started = false;
  }

  private assertStarted(): void {
    if (!this.started)
      throw new FailedPreconditionError('in-process event bus is not started (call start())');
  }

  private ensureTopic(name: string, partitions = this.defaultPartitions): StoredRecord[][] {
    if (!name) throw new InvalidArgumentError('topic name is empty', { topic: name });
    let logs = this.topics.get(name);
    if (!logs) {
      if (!Number.isInteger(partitions) || partitions < 1)
        throw new InvalidArgumentError('partitions must be >= 1', { topic: name, partitions });
      logs = Array.from({ length: partitions }, () => []);
      this.topics.set(name, logs);
    }
    return logs;
  }

  private group(groupId: string): Group {
    let group = this.groups.get(groupId);
    if (!group) {
      group = { committed: new Map(), members: [], chain: Promise.resolve(), pendingRebalances: 0 };
      this.groups.set(groupId, group);
    }
    return group;
  }

  /**
   * Kafka's rebalance, in-process: consumption pauses, every live member finishes its in-flight
   * event and commits what it completed, then partitions are dealt round robin over the members
   * (in join order) and each member resumes each partition it got from the group's committed offset.
   * Rebalances of one group run one after another.
   */
  private rebalance(groupId: string): Promise<void> {
    const group = this.group(groupId);
    group.pendingRebalances += 1;
    group.chain = group.chain
      .then(async () => {
        const live = group.members.filter((m) => m.active);
        this.wake();
        await Promise.all(live.map((m) => m.inFlight));
        for (const m of live) this.commit(m);
        const topics = [...new Set(live.flatMap((m) => m.options.topics))].sort();
        const all = topics.flatMap((t) => (this.topics.get(t) ?? []).map((_, p) => tpKey(t, p)));
        const assigned = new Map<Member, string[]>(live.map((m) => [m, []]));
        all.forEach((tp, i) => {
          const candidates = live.filter((m) => m.options.topics.includes(splitTp(tp)[0]));
          if (candidates.length > 0) assigned.get(candidates[i % candidates.length]!)!.push(tp);
        });
        for (const [m, tps] of assigned) {
          m.positions = new Map(
            tps.map((tp) => {
              const [topic, partition] = splitTp(tp);
              const committed = group.committed.get(tp);
              const start =
                committed ?? (m.options.fromBeginning ? 0 : this.topics.get(topic)![partition]!.length);
              return [tp, start];
            }),
          );
        }
      })
      .finally(() => {
        group.pendingRebalances -= 1;
        this.wake();
      });
    return group.chain;
  }

  private commit(member: Member): void {
    if (member.crashed || member.tracker.size === 0) return;
    const group = this.group(member.options.groupId);
    for (const { topic, partition, offset } of member.tracker.take())
      group.committed.set(tpKey(topic, partition), Number(offset));
  }

  private async run(member: Member): Promise<void> {
    const group = this.group(member.options.groupId);
    while (member.active) {
      if (group.pendingRebalances > 0) {
        await group.chain;
        continue;
      }
      const next = this.nextRecord(member);
      if (!next) {
        await this.waitForWork();
        continue;
      }
      const step = this.deliver(member, next);
      member.inFlight = step;
      await step;
      member.inFlight = undefined;
    }
  }

  /** Delivers one event (with retries / dead-letter) and records its completion for the commit. */
  private async deliver(member: Member, next: NextRecord): Promise<void> {
    const { tp, topic, partition, offset, record } = next;
    let outcome;
    try {
      outcome = await deliverWithRetries(
        {
          topic,
          partition,
          offset: String(offset),
          key: record.key,
          value: Uint8Array.from(record.value),
          headers: { ...record.headers },
        },
        member.handler,
        {
          groupId: member.options.groupId,
          maxAttempts: member.options.maxAttempts,
          backoffMs: this.retryBackoffMs,
          logger: this.logger,
          deadLetter: (dead) => this.publish(member.options.deadLetterTopic, [dead]),
          abandoned: () => member.crashed,
        },
      );
    } catch (error) {
      // The dead-letter publish failed: the event stays uncommitted and is delivered again.
      this.logger.error(
        { group: member.options.groupId, topic, partition, offset, err: String(error) },
        'dead-letter failed',
      );
      await new Promise((resolve) => setTimeout(resolve, this.retryBackoffMs));
      return;
    }
    if (outcome === 'abandoned' || member.crashed) return;
    if (member.positions.get(tp) === offset) {
      member.positions.set(tp, offset + 1);
      member.tracker.completed(topic, partition, String(offset));
      if (member.tracker.isDue()) this.commit(member);
    }
  }

  private nextRecord(member: Member): NextRecord | undefined {
    const entries = [...member.positions.entries()];
    for (let i = 0; i < entries.length; i++) {
      const [tp, position] = entries[(member.cursor + i) % entries.length]!;
      const [topic, partition] = splitTp(tp);
      const record = this.topics.get(topic)?.[partition]?.[position];
      if (record) {
        member.cursor = (member.cursor + i + 1) % entries.length;
        return { tp, topic, partition, offset: position, record };
      }
    }
    return undefined;
  }

  private waitForWork(): Promise<void> {
    return new Promise((resolve) => {
      const waker = () => {
        this.wakers.delete(waker);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(waker, 250);
      this.wakers.add(waker);
    });
  }

  private wake(): void {
    for (const waker of [...this.wakers]) waker();
  }

  private async stopMember(member: Member): Promise<void> {
    if (!member.active) return;
    member.active = false;
    clearInterval(member.timer);
    this.wake();
    await member.loop;
    this.commit(member);
    const group = this.group(member.options.groupId);
    group.members = group.members.filter((m) => m !== member);
    await this.rebalance(member.options.groupId);
  }
}
