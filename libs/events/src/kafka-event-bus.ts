import type { ConnectionOptions } from 'node:tls';
import {
  Kafka,
  Partitioners,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type KafkaMessage,
  type Message,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { CommitTracker, type PartitionOffset } from './commit-tracker.js';
import { consumerLagGauge } from './consumer-lag-metric.js';
import { deliverWithRetries, type RetryPolicy } from './delivery.js';
import {
  DEFAULT_DEAD_LETTER_TOPIC,
  DEFAULT_MAX_ATTEMPTS,
  type DeliveredEvent,
  type EventBus,
  type EventHandler,
  type EventHeaders,
  type PublishRecord,
  type SubscribeOptions,
  type Subscription,
  type TopicSpec,
} from './event-bus.js';
import { KAFKA_LOG_LEVELS, pinoLogCreator, type KafkaLogLevelName } from './kafka-logger.js';

export interface KafkaSaslConfig {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export interface KafkaEventBusConfig {
  brokers: string[];
  /** Default `hm3`. */
  clientId?: string;
  /** TLS: true for the system CAs, or node TLS options (ca, cert, key for mTLS). */
  ssl?: boolean | ConnectionOptions;
  sasl?: KafkaSaslConfig;
  /** Created on start (idempotent); the dead-letter topic is always created too. */
  topics?: TopicSpec[];
  /** Partitions of a topic first used by publish/subscribe without being configured. Default 1. */
  defaultPartitions?: number;
  /** Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  deadLetterTopic?: string;
  deadLetterPartitions?: number;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** kafkajs retry settings for connections and requests (broker restarts). */
  retry?: { initialRetryTimeMs?: number; maxRetryTimeMs?: number; retries?: number };
  consumer?: {
    sessionTimeoutMs?: number;
    heartbeatIntervalMs?: number;
    rebalanceTimeoutMs?: number;
    /** Partitions handled at once; each partition stays sequential (per-key order). Default 1. */
    partitionsConsumedConcurrently?: number;
    maxWaitTimeMs?: number;
  };
  /** Handler retry backoff: attempt n+1 waits `retryBackoffMs * n`. Default 100 ms. */
  retryBackoffMs?: number;
  logger?: Logger;
  /** Level of kafkajs's own log lines. Default `warn`. */
  kafkaLogLevel?: KafkaLogLevelName;
  metrics?: {
    registry?: Registry;
    /** How often a subscription refreshes `hm3_consumer_lag`; 0 = only when lag() is called. Default 15 s. */
    lagRefreshMs?: number;
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const REBALANCE_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'NOT_COORDINATOR_FOR_GROUP',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
]);

function toHeaders(headers: KafkaMessage['headers']): EventHeaders {
  const out: EventHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}

function byTopic(offsets: PartitionOffset[]) {
  const topics = new Map<string, Array<{ partition: number; offset: string }>>();
  for (const { topic, partition, offset } of offsets) {
    const list = topics.get(topic) ?? [];
    list.push({ partition, offset });
    topics.set(topic, list);
  }
  return { topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) };
}

/**
 * The Kafka adapter of the EventBus port (kafkajs): an idempotent producer, topics created on start,
 * consumer groups with manual commits after handlers resolve (on a configurable cadence), per-key
 * ordering (one partition is handled sequentially), retries then dead-letter, consumer lag as the
 * `hm3_consumer_lag{topic,group}` gauge, SASL/TLS, and recovery from broker restarts.
 */
export class KafkaEventBus implements EventBus {
  readonly logger: Logger;
  private kafka?: Kafka;
  private admin?: Admin;
  private producer?: Producer;
  private readonly knownTopics = new Set<string>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private readonly deadLetterTopic: string;
  /** Publishes waiting for the send in flight (see publish). */
  private pendingSend:
    | {
        topics: Map<string, Message[]>;
        resolve: () => void;
        reject: (error: unknown) => void;
        done: Promise<void>;
      }
    | undefined;
  private sending = false;

  constructor(private readonly config: KafkaEventBusConfig) {
    if (!Array.isArray(config.brokers) || config.brokers.length === 0) {
      throw new InvalidArgumentError('Kafka brokers are not configured', { field: 'brokers' });
    }
    this.logger = config.logger ?? pino({ name: 'hm3-events', level: process.env.HM3_LOG_LEVEL ?? 'info' });
    this.deadLetterTopic = config.deadLetterTopic ?? DEFAULT_DEAD_LETTER_TOPIC;
  }

  async start(): Promise<void> {
    const { config } = this;
    const retry = {
      initialRetryTime: config.retry?.initialRetryTimeMs ?? 300,
      maxRetryTime: config.retry?.maxRetryTimeMs ?? 5000,
      retries: config.retry?.retries ?? 10,
    };
    const sasl: SASLOptions | undefined = config.sasl
      ? ({
          mechanism: config.sasl.mechanism,
          username: config.sasl.username,
          password: config.sasl.password,
        } as SASLOptions)
      : undefined;
    this.logger.info(
      {
        brokers: config.brokers,
        clientId: config.clientId ?? 'hm3',
        ssl: Boolean(config.ssl),
        sasl: config.sasl?.mechanism ?? 'none',
      },
      'kafka event bus starting',
    );
    this.kafka = new Kafka({
      clientId: config.clientId ?? 'hm3',
      brokers: config.brokers,
      ssl: config.ssl,
      sasl,
      connectionTimeout: config.connectionTimeoutMs ?? 3000,
      requestTimeout: config.requestTimeoutMs ?? 30000,
      retry,
      logLevel: KAFKA_LOG_LEVELS[config.kafkaLogLevel ?? 'warn'],
      logCreator: pinoLogCreator(this.logger, config.sasl ? [config.sasl.password] : []),
    });
    this.admin = this.kafka.admin({ retry });
    await this.admin.connect();
    await this.createTopics([
      ...(config.topics ?? []),
      { name: this.deadLetterTopic, partitions: config.deadLetterPartitions ?? 1 },
    ]);
    // Idempotent: the broker de-duplicates retried batches; kafkajs requires acks=all and at most one
    // request in flight to keep that guarantee, and retries without limit (it warns otherwise).
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Java-compatible murmur2, the same function the in-process adapter uses (partitioner.ts).
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      retry: { ...retry, retries: Number.MAX_SAFE_INTEGER },
    });
    await this.producer.connect();
  }

  /**
   * Publishes that arrive while a send is in flight go out together in the next one (one request for
   * many concurrent publishers, as the idempotent producer sends one request at a time). A publish
   * resolves once the broker acknowledged (acks=all) the send that carried it; per-key order holds.
   */
  async publish(topic: string, records: PublishRecord[]): Promise<void> {
    this.require(this.producer);
    if (records.length === 0) return;
    await this.ensureTopics([topic]);
    const messages = records.map((r) => ({
      key: r.key,
      value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength),
      headers: { ...r.headers },
    }));
    if (!this.pendingSend) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.pendingSend = { topics: new Map(), resolve, reject, done };
      if (!this.sending) queueMicrotask(() => void this.flushSends());
    }
    const list = this.pendingSend.topics.get(topic) ?? [];
    list.push(...messages);
    this.pendingSend.topics.set(topic, list);
    return this.pendingSend.done;
  }

  private async flushSends(): Promise<void> {
    const group = this.pendingSend;
    if (!group || this.sending) return;
    this.pendingSend = undefined;
    this.sending = true;
    try {
      const producer = this.require(this.producer);
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...group.topics].map(([topic, messages]) => ({ topic, messages })),
      });
      group.resolve();
    } catch (error) {
      group.reject(error);
    } finally {
      this.sending = false;
      if (this.pendingSend) void this.flushSends();
    }
  }

  async subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
    const kafka = this.require(this.kafka);
    if (options.topics.length === 0)
      throw new InvalidArgumentError('subscribe needs at least one topic', { groupId: options.groupId });
    await this.ensureTopics(options.topics);
    const subscription = new KafkaSubscription(kafka, this, options, handler, this.config);
    this.subscriptions.add(subscription);
    subscription.onStopped = () => this.subscriptions.delete(subscription);
    await subscription.start();
    return subscription;
  }

  async lag(groupId: string, topics: string[]): Promise<Record<string, number>> {
    const admin = this.require(this.admin);
    const gauge = consumerLagGauge(this.config.metrics?.registry);
    const [committed, ends] = await Promise.all([
      admin.fetchOffsets({ groupId, topics }),
      Promise.all(topics.map((topic) => admin.fetchTopicOffsets(topic))),
    ]);
    const result: Record<string, number> = {};
    topics.forEach((topic, i) => {
      const partitions = committed.find((c) => c.topic === topic)?.partitions ?? [];
      let lag = 0n;
      for (const end of ends[i] ?? []) {
        const done = partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
        const from = BigInt(done) < 0n ? BigInt(end.low) : BigInt(done);
        const diff = BigInt(end.high) - from;
        if (diff > 0n) lag += diff;
      }
      result[topic] = Number(lag);
      gauge.set({ topic, group: groupId }, Number(lag));
    });
    return result;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    await this.producer?.disconnect();
    await this.admin?.disconnect();
    this.producer = undefined;
    this.admin = undefined;
    this.kafka = undefined;
  }

  /** Sends one dead-letter record (used by subscriptions). */
  async deadLetter(topic: string, record: PublishRecord): Promise<void> {
    await this.publish(topic, [record]);
  }

  private async createTopics(specs: TopicSpec[]): Promise<void> {
    const admin = this.require(this.admin);
    const fresh = specs.filter((s) => !this.knownTopics.has(s.name));
    if (fresh.length === 0) return;
    for (const s of fresh) {
      if (!s.name || !Number.isInteger(s.partitions) || s.partitions < 1) {
        throw new InvalidArgumentError('invalid topic spec', { topic: s.name, partitions: s.partitions });
      }
    }
    await admin.createTopics({
      waitForLeaders: true,
      topics: fresh.map((s) => ({
        topic: s.name,
        numPartitions: s.partitions,
        ...(this.config.replicationFactor ? { replicationFactor: this.config.replicationFactor } : {}),
      })),
    });
    // Several services starting at once on a fresh broker race here: the loser's createTopics finds
    // the topics made and returns before their partitions have leaders, so its metadata read (or a
    // second process's createPartitions) can fail for a while; such errors are retried.
    await retryWhileSettling(() => this.growPartitions(admin, fresh), this.logger);
    for (const s of fresh) this.knownTopics.add(s.name);
  }

  /**
   * A topic created earlier with fewer partitions (another process, the broker's default) gets
   * more, so that consumer-group members can share it. Partitions are never removed; keys then
   * map to new partitions for new messages (consumers are idempotent, order per key continues).
   */
  private async growPartitions(admin: Admin, specs: TopicSpec[]): Promise<void> {
    const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
    const grow = specs.flatMap((s) => {
      const have = topics.find((t) => t.name === s.name)?.partitions.length ?? s.partitions;
      return have < s.partitions ? [{ topic: s.name, count: s.partitions }] : [];
    });
    if (grow.length > 0) {
      await admin.createPartitions({ topicPartitions: grow });
      this.logger.info({ topics: grow }, 'topic partitions added');
    }
  }

  private async ensureTopics(topics: string[]): Promise<void> {
    const unknown = topics.filter((t) => !this.knownTopics.has(t));
    if (unknown.length === 0) return;
    await this.createTopics(
      unknown.map((name) => ({ name, partitions: this.config.defaultPartitions ?? 1 })),
    );
  }

  private require<T>(value: T | undefined): T {
    if (value === undefined)
      throw new FailedPreconditionError('Kafka event bus is not started (call start())');
    return value;
  }
}

/** One consumer-group member: owns its kafkajs consumer, restarting it when it crashes. */
class KafkaSubscription implements Subscription {
  readonly groupId: string;
  onStopped?: () => void;
  private consumer?: Consumer;
  private stopping = false;
  private batchesInFlight = 0;
  private readonly tracker: CommitTracker;
  private readonly retryPolicy: RetryPolicy;
  private commitTimer?: NodeJS.Timeout;
  private lagTimer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private assignment: Record<string, number[]> = {};
  private readonly logger: Logger;

  constructor(
    private readonly kafka: Kafka,
    private readonly bus: KafkaEventBus,
    private readonly options: SubscribeOptions,
    private readonly handler: EventHandler,
    private readonly config: KafkaEventBusConfig,
  ) {
    this.groupId = options.groupId;
    this.tracker = new CommitTracker(options.commit);
    this.logger = bus.logger.child({ group: options.groupId });
    const deadLetterTopic = options.deadLetterTopic ?? config.deadLetterTopic ?? DEFAULT_DEAD_LETTER_TOPIC;
    this.retryPolicy = {
      groupId: options.groupId,
      maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      backoffMs: config.retryBackoffMs ?? 100,
      logger: bus.logger,
      deadLetter: (record) => bus.deadLetter(deadLetterTopic, record),
    };
  }

  async start(): Promise<void> {
    await this.startConsumer();
    this.commitTimer = setInterval(
      () => void this.commitIdle(),
      Math.max(10, Math.floor(this.tracker.intervalMs / 2)),
    );
    this.commitTimer.unref();
    const lagRefreshMs = this.config.metrics?.lagRefreshMs ?? 15000;
    if (lagRefreshMs > 0) {
      this.lagTimer = setInterval(() => {
        this.lag().catch((error) => this.logger.debug({ err: String(error) }, 'lag refresh failed'));
      }, lagRefreshMs);
      this.lagTimer.unref();
    }
  }

  lag(): Promise<Record<string, number>> {
    return this.bus.lag(this.groupId, this.options.topics);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.commitTimer);
    clearInterval(this.lagTimer);
    clearTimeout(this.restartTimer);
    const consumer = this.consumer;
    if (consumer) {
      if (this.batchesInFlight === 0) await this.commitIdle(true);
      // stop() waits for the in-flight batch, whose loop commits what it completed before returning.
      await consumer
        .stop()
        .catch((error) => this.logger.warn({ err: String(error) }, 'consumer stop failed'));
      await consumer
        .disconnect()
        .catch((error) => this.logger.warn({ err: String(error) }, 'consumer disconnect failed'));
    }
    this.onStopped?.();
  }

  private async startConsumer(): Promise<void> {
    const c = this.config.consumer ?? {};
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: c.sessionTimeoutMs ?? 30000,
      heartbeatInterval: c.heartbeatIntervalMs ?? 3000,
      rebalanceTimeout: c.rebalanceTimeoutMs ?? 60000,
      maxWaitTimeInMs: c.maxWaitTimeMs ?? 500,
      allowAutoTopicCreation: false,
      retry: {
        initialRetryTime: this.config.retry?.initialRetryTimeMs ?? 300,
        maxRetryTime: this.config.retry?.maxRetryTimeMs ?? 5000,
        retries: this.config.retry?.retries ?? 10,
        restartOnFailure: async () => !this.stopping,
      },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      this.assignment = event.payload.memberAssignment;
      this.tracker.retain((topic, partition) => this.assignment[topic]?.includes(partition) ?? false);
      this.logger.info({ assignment: this.assignment }, 'joined consumer group');
    });
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.logger.error({ err: String(error), restart }, 'consumer crashed');
      if (!restart && !this.stopping) this.scheduleRestart(consumer);
    });
    await consumer.connect();
    await consumer.subscribe({
      topics: this.options.topics,
      fromBeginning: this.options.fromBeginning ?? true,
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: c.partitionsConsumedConcurrently ?? 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  /** kafkajs restarts a consumer after retriable errors; after the others this does. */
  private scheduleRestart(crashed: Consumer): void {
    const delay = this.config.retry?.maxRetryTimeMs ?? 5000;
    this.restartTimer = setTimeout(async () => {
      if (this.stopping) return;
      await crashed.disconnect().catch(() => undefined);
      this.tracker.clear();
      try {
        await this.startConsumer();
        this.logger.warn('consumer restarted after crash');
      } catch (error) {
        this.logger.error({ err: String(error) }, 'consumer restart failed; retrying');
        this.scheduleRestart(crashed);
      }
    }, delay);
    this.restartTimer.unref();
  }

  private async eachBatch({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
    commitOffsetsIfNecessary,
  }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    this.batchesInFlight += 1;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
        const event: Omit<DeliveredEvent, 'attempt'> = {
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? '',
          value: message.value ? new Uint8Array(message.value) : new Uint8Array(),
          headers: toHeaders(message.headers),
        };
        await deliverWithRetries(event, this.handler, this.retryPolicy);
        resolveOffset(message.offset);
        this.tracker.completed(topic, partition, message.offset);
        if (this.tracker.isDue()) await this.commit((offsets) => commitOffsetsIfNecessary(byTopic(offsets)));
        try {
          await heartbeat();
        } catch (error) {
          // The group is rebalancing: commit what this member completed while it still owns it.
          if (REBALANCE_ERRORS.has((error as { type?: string }).type ?? '')) {
            await this.commit((offsets) => commitOffsetsIfNecessary(byTopic(offsets)));
          }
          throw error;
        }
      }
      if (!isRunning() || this.stopping)
        await this.commit((offsets) => commitOffsetsIfNecessary(byTopic(offsets)));
    } finally {
      this.batchesInFlight -= 1;
    }
  }

  /** The cadence's time half, while no batch runs (and on stop). */
  private async commitIdle(force = false): Promise<void> {
    const consumer = this.consumer;
    if (!consumer || this.batchesInFlight > 0 || this.tracker.size === 0) return;
    if (!force && !this.tracker.isDue()) return;
    await this.commit((offsets) => consumer.commitOffsets(offsets));
  }

  private async commit(send: (offsets: PartitionOffset[]) => Promise<unknown>): Promise<void> {
    const offsets = this.tracker.take();
    if (offsets.length === 0) return;
    try {
      await send(offsets);
      this.logger.debug({ offsets }, 'offsets committed');
    } catch (error) {
      this.tracker.restore(offsets);
      this.logger.warn({ err: String(error) }, 'offset commit failed; will retry');
      await sleep(0);
    }
  }
}

/** Broker answers that a topic being created or grown by another process gives until it settles. */
const SETTLING_ERRORS = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_OR_FOLLOWER',
  'INVALID_PARTITIONS',
  'REASSIGNMENT_IN_PROGRESS',
]);

function isSettlingError(error: unknown): boolean {
  const e = error as { type?: unknown; retriable?: unknown; cause?: unknown } | undefined;
  if (e === undefined || e === null) return false;
  if (typeof e.type === 'string' && SETTLING_ERRORS.has(e.type)) return true;
  return e.cause !== undefined && e.cause !== error && isSettlingError(e.cause);
}

/** Runs `step` until it succeeds, retrying settling errors with backoff for up to `budgetMs`. */
async function retryWhileSettling(
  step: () => Promise<void>,
  logger: Logger,
  budgetMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await step();
      return;
    } catch (error) {
      if (!isSettlingError(error) || Date.now() > deadline) throw error;
      logger.info({ attempt, error: String(error) }, 'topics still settling: retrying');
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * attempt, 1000)));
    }
  }
}
