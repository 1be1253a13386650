import type { Logger } from 'pino';
import {
  DEAD_LETTER_HEADERS,
  type DeliveredEvent,
  type EventHandler,
  type PublishRecord,
} from './event-bus.js';

export interface RetryPolicy {
  groupId: string;
  maxAttempts: number;
  /** Wait before attempt n+1 is `backoffMs * n`. */
  backoffMs: number;
  logger: Logger;
  /** Sends the dead-letter record; a failure propagates (the event stays uncommitted). */
  deadLetter: (record: PublishRecord) => Promise<void>;
  /** True when the consumer died meanwhile: stop retrying and report nothing. */
  abandoned?: () => boolean;
}

export type DeliveryOutcome = 'handled' | 'dead-lettered' | 'abandoned';

const MAX_REASON_LENGTH = 2000;

/** The record `hm3.dead-letter` receives for an event that failed `attempts` times. */
export function deadLetterRecord(
  event: Omit<DeliveredEvent, 'attempt'>,
  reason: string,
  groupId: string,
  attempts: number,
): PublishRecord {
  return {
    key: event.key,
    value: event.value,
    headers: {
      ...event.headers,
      [DEAD_LETTER_HEADERS.reason]: reason.slice(0, MAX_REASON_LENGTH),
      [DEAD_LETTER_HEADERS.sourceTopic]: event.topic,
      [DEAD_LETTER_HEADERS.sourcePartition]: String(event.partition),
      [DEAD_LETTER_HEADERS.sourceOffset]: event.offset,
      [DEAD_LETTER_HEADERS.consumerGroup]: groupId,
      [DEAD_LETTER_HEADERS.attempts]: String(attempts),
    },
  };
}

function reasonOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs the handler up to `maxAttempts` times; after the last failure the event goes to the
 * dead-letter topic with the reason. Either way the event is then complete (committable).
 */
export async function deliverWithRetries(
  event: Omit<DeliveredEvent, 'attempt'>,
  handler: EventHandler,
  policy: RetryPolicy,
): Promise<DeliveryOutcome> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    if (policy.abandoned?.()) return 'abandoned';
    try {
      await handler({ ...event, attempt });
      return policy.abandoned?.() ? 'abandoned' : 'handled';
    } catch (error) {
      lastError = error;
      if (policy.abandoned?.()) return 'abandoned';
      policy.logger.warn(
        {
          topic: event.topic,
          partition: event.partition,
          offset: event.offset,
          group: policy.groupId,
          attempt,
          err: reasonOf(error),
        },
        'event handler failed',
      );
      if (attempt < policy.maxAttempts) await sleep(policy.backoffMs * attempt);
    }
  }
  const reason = reasonOf(lastError);
  await policy.deadLetter(deadLetterRecord(event, reason, policy.groupId, policy.maxAttempts));
  policy.logger.error(
    {
      topic: event.topic,
      partition: event.partition,
      offset: event.offset,
      group: policy.groupId,
      attempts: policy.maxAttempts,
      reason,
    },
    'event dead-lettered',
  );
  return 'dead-lettered';
}
