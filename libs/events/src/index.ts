// @hm3/events: the EventBus port, its Kafka and in-process adapters, and the idempotent consumer.
export * from './event-bus.js';
export { derivedEventId, EVENT_TRACE_ID_HEADER, eventRecordHeaders } from './event-ids.js';
export { InProcessEventBus, type InProcessEventBusOptions } from './in-process-event-bus.js';
export { KafkaEventBus, type KafkaEventBusConfig, type KafkaSaslConfig } from './kafka-event-bus.js';
export {
  consumeIdempotently,
  eventIdFromHeader,
  type IdempotentConsumerHooks,
  type IdempotentConsumerOptions,
  type IdempotentConsumerStats,
  type IdempotentSubscription,
  type ProcessedMarkers,
} from './idempotent-consumer.js';
export { CONSUMER_LAG_METRIC, consumerLagGauge } from './consumer-lag-metric.js';
export { pinoLogCreator, scrubSecrets, type KafkaLogLevelName } from './kafka-logger.js';
export { partitionForKey } from './partitioner.js';
