/**
 * The EventBus port: what domain code and services use to publish and consume events. Two adapters
 * implement it (Kafka through kafkajs, and an in-process one); ONE contract suite runs against both.
 *
 * Delivery is at-least-once: a handler's event is committed only after the handler resolved; a
 * handler that throws is retried up to `maxAttempts`, then the event goes to the dead-letter topic
 * with the reason, and is committed. Consumers make their effects idempotent (see
 * idempotent-consumer.ts).
 */

/** Headers travel as strings; the envelope's ids (event_id, trace_id) are also copied here. */
export type EventHeaders = Record<string, string>;

export interface PublishRecord {
  /** Partitioning key: the candidate id for HM3 events, so one candidate's events stay ordered. */
  key: string;
  value: Uint8Array;
  headers?: EventHeaders;
}

export interface DeliveredEvent {
  topic: string;
  partition: number;
  /** Offset within the partition, as a decimal string (Kafka offsets exceed 2^53 in principle). */
  offset: string;
  key: string;
  value: Uint8Array;
  headers: EventHeaders;
  /** 1 for the first delivery to this consumer process, 2+ for its in-process retries. */
  attempt: number;
}

export interface SubscribeOptions {
  /** Consumer group: replicas with the same group share the partitions of the topics. */
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts. Default true (nothing published is missed). */
  fromBeginning?: boolean;
  /** Attempts per event before it is dead-lettered. Default 3. */
  maxAttempts?: number;
  /** Default `hm3.dead-letter`. */
  deadLetterTopic?: string;
  /**
   * When completed events are committed. Added to the port because the cadence is a delivery
   * property both adapters must honour alike: a slow cadence leaves many delivered-but-uncommitted
   * events, which a crash then redelivers (the contract's crash test relies on it).
   */
  commit?: CommitCadence;
}

/**
 * Completed offsets are committed when `everyMessages` events completed since the last commit, or
 * `intervalMs` elapsed (checked after each event and by an idle timer), and always on stop() and
 * before a partition is handed to another member. Defaults: 100 events, 1000 ms.
 */
export interface CommitCadence {
  everyMessages?: number;
  intervalMs?: number;
}

export type EventHandler = (event: DeliveredEvent) => Promise<void>;

export interface Subscription {
  readonly groupId: string;
  /** Stops consuming after in-flight handlers finish; commits what they completed. */
  stop(): Promise<void>;
  /** Messages not yet committed by this group, per topic (summed over partitions). */
  lag(): Promise<Record<string, number>>;
}

export interface TopicSpec {
  name: string;
  partitions: number;
}

export interface EventBus {
  /** Connects and creates the configured topics (idempotent). */
  start(): Promise<void>;
  publish(topic: string, records: PublishRecord[]): Promise<void>;
  subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription>;
  /**
   * Messages of `topics` not yet committed by `groupId` (per topic, summed over partitions), whether
   * or not a member of the group is running: a group that never committed lags by everything still
   * in the log. Added to the port so lag is observable before any consumer starts (autoscaling on it).
   */
  lag(groupId: string, topics: string[]): Promise<Record<string, number>>;
  /** Stops every subscription and disconnects. */
  close(): Promise<void>;
}

/** Header names the dead-letter topic adds to a message it receives. */
export const DEAD_LETTER_HEADERS = {
  reason: 'hm3-dead-letter-reason',
  sourceTopic: 'hm3-dead-letter-source-topic',
  sourcePartition: 'hm3-dead-letter-source-partition',
  sourceOffset: 'hm3-dead-letter-source-offset',
  consumerGroup: 'hm3-dead-letter-group',
  attempts: 'hm3-dead-letter-attempts',
} as const;

export const DEFAULT_DEAD_LETTER_TOPIC = 'hm3.dead-letter';
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_COMMIT_EVERY_MESSAGES = 100;
export const DEFAULT_COMMIT_INTERVAL_MS = 1000;
/** The header the idempotent consumer reads the event id from by default. */
export const EVENT_ID_HEADER = 'hm3-event-id';
