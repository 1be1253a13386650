import { InvalidArgumentError } from '@hm3/errors';
import {
  EVENT_ID_HEADER,
  type DeliveredEvent,
  type EventBus,
  type SubscribeOptions,
  type Subscription,
} from './event-bus.js';

/**
 * The processed-events markers an idempotent consumer needs. @hm3/store's ProcessedEventsRepository
 * satisfies it structurally (declared here so @hm3/events does not depend on the store at runtime).
 */
export interface ProcessedMarkers {
  has(eventId: string): Promise<boolean>;
  /** Records the marker; false when it was already there (never throws for a duplicate). */
  mark(eventId: string, consumer: string): Promise<boolean | void>;
}

/** Fault-injection points between the steps (tests kill the process here). */
export interface IdempotentConsumerHooks {
  afterEffect?: (event: DeliveredEvent, eventId: string) => Promise<void> | void;
  afterMarker?: (event: DeliveredEvent, eventId: string) => Promise<void> | void;
}

export interface IdempotentConsumerOptions extends Omit<SubscribeOptions, 'topics' | 'groupId'> {
  groupId: string;
  topics: string[];
  /** The name recorded with each marker (the service, e.g. `evaluator`). */
  consumerName: string;
  /** The event's id. Default: the `hm3-event-id` header. */
  eventId?: (event: DeliveredEvent) => string;
  hooks?: IdempotentConsumerHooks;
}

export interface IdempotentConsumerStats {
  /** Events whose effect ran in this process (first applications and re-applications alike). */
  applied: number;
  /** Events skipped because their marker was there: redeliveries of completed events. */
  redeliveries: number;
}

export interface IdempotentSubscription extends Subscription {
  readonly stats: Readonly<IdempotentConsumerStats>;
}

export function eventIdFromHeader(event: DeliveredEvent): string {
  const id = event.headers[EVENT_ID_HEADER];
  if (!id) {
    throw new InvalidArgumentError(`event has no ${EVENT_ID_HEADER} header`, {
      topic: event.topic,
      partition: event.partition,
      offset: event.offset,
    });
  }
  return id;
}

/**
 * Subscribes `effect` so that each event's effect is visible once although delivery is
 * at-least-once. Per event: a marker present -> skip (a redelivery); else the effect (which must be
 * an idempotent upsert), then the processed marker, then return so the bus commits the offset.
 * A crash between any two steps repeats nothing visible: before the marker, the redelivery redoes
 * the upsert (no change); after it, the redelivery is skipped.
 */
export async function consumeIdempotently(
  bus: EventBus,
  markers: ProcessedMarkers,
  options: IdempotentConsumerOptions,
  effect: (event: DeliveredEvent, eventId: string) => Promise<void>,
): Promise<IdempotentSubscription> {
  const { consumerName, eventId = eventIdFromHeader, hooks = {}, ...subscribeOptions } = options;
  const stats: IdempotentConsumerStats = { applied: 0, redeliveries: 0 };
  const subscription = await bus.subscribe(subscribeOptions, async (event) => {
    const id = eventId(event);
    if (await markers.has(id)) {
      stats.redeliveries += 1;
      return;
    }
    await effect(event, id);
    stats.applied += 1;
    await hooks.afterEffect?.(event, id);
    await markers.mark(id, consumerName);
    await hooks.afterMarker?.(event, id);
  });
  return {
    groupId: subscription.groupId,
    stats,
    stop: () => subscription.stop(),
    lag: () => subscription.lag(),
  };
}
