/**
 * The consumer of the contract's crash test, shared by the Kafka child process and the in-process
 * harness: an idempotent consumer whose effect is an upsert of one effect document per event plus a
 * counter incremented only on an event's first application, with fault hooks that kill it.
 */
import type { CrashConsumerProgress, CrashConsumerSpec } from './event-bus.contract.js';
import type { EventBus } from './event-bus.js';
import {
  consumeIdempotently,
  type IdempotentSubscription,
  type ProcessedMarkers,
} from './idempotent-consumer.js';

export interface CrashEffects {
  /** Idempotent: the effect document of `eventId` holds `value`. */
  upsert(runId: string, eventId: string, value: number): Promise<void>;
  /**
   * Increments the run's counter unless `eventId` was counted before, in ONE atomic single-document
   * update (the $inc and the record of the id), so a kill anywhere cannot count twice or lose one.
   * Returns true when it counted (the first application).
   */
  countFirst(runId: string, eventId: string): Promise<boolean>;
}

export const CRASH_CONSUMER_NAME = 'contract-crash-test';

export async function startCrashConsumer(
  bus: EventBus,
  markers: ProcessedMarkers,
  effects: CrashEffects,
  spec: CrashConsumerSpec,
  die: () => Promise<void>,
): Promise<{ subscription: IdempotentSubscription; progress: () => CrashConsumerProgress }> {
  let reapplied = 0;
  let applied = 0;
  const fault = spec.fault;
  const subscription = await consumeIdempotently(
    bus,
    markers,
    {
      groupId: spec.groupId,
      topics: [spec.topic],
      consumerName: CRASH_CONSUMER_NAME,
      commit: spec.commit,
      hooks: {
        afterEffect: async () => {
          if (fault?.point === 'after-effect' && applied === fault.at) await die();
        },
        afterMarker: async () => {
          if (fault?.point === 'after-marker' && applied === fault.at) await die();
        },
      },
    },
    async (event, eventId) => {
      if (spec.throttleMs) await new Promise((resolve) => setTimeout(resolve, spec.throttleMs));
      const { value } = JSON.parse(new TextDecoder().decode(event.value)) as { value: number };
      await effects.upsert(spec.runId, eventId, value);
      applied += 1;
      if (!(await effects.countFirst(spec.runId, eventId))) reapplied += 1;
    },
  );
  const progress = (): CrashConsumerProgress => ({
    handled: applied + subscription.stats.redeliveries,
    applied,
    reapplied,
    redeliveries: subscription.stats.redeliveries,
  });
  return { subscription, progress };
}
