/**
 * The Kafka side of tensor-merge: `hm3.merge.requested` -> merge -> `hm3.merge.completed` or
 * `hm3.merge.failed`, keyed by the candidate id. Idempotent: the effect is content-addressed (a
 * repeated merge finds its artifact), the answer's event id is derived from the request's (a repeated
 * answer carries the same id, so its consumers deduplicate it), and the processed marker is written
 * after the answer is published (consumeIdempotently).
 */
import { randomUUID } from 'node:crypto';
import { Hm3Error, InvalidArgumentError } from '@hm3/errors';
import {
  EVENT_ID_HEADER,
  consumeIdempotently,
  derivedEventId,
  eventRecordHeaders,
  type EventBus,
  type IdempotentSubscription,
} from '@hm3/events';
import { events, TOPICS } from '@hm3/proto';
import type { ProcessedEventsRepository } from '@hm3/store';
import type { Logger } from '@hm3/service-kit';
import type { TensorMerge } from './tensor-merge.js';
import { deviceFromWire, recipeFromWire } from './wire.js';

export const MERGE_CONSUMER_GROUP = 'hm3-tensor-merge';
export const PRODUCER = 'tensor-merge';

const RETRYABLE = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'INTERNAL']);

export interface MergeTopics {
  readonly requested: string;
  readonly completed: string;
  readonly failed: string;
}

export const MERGE_TOPICS: MergeTopics = {
  requested: TOPICS.MERGE_REQUESTED,
  completed: TOPICS.MERGE_COMPLETED,
  failed: TOPICS.MERGE_FAILED,
};

export interface MergeConsumerOptions {
  readonly groupId?: string;
  /** Topic names (default the contract's hm3.merge.*; tests use their own). The envelope's type stays the contract's. */
  readonly topics?: MergeTopics;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** Encodes an envelope and its Kafka record (key = candidate id, event id and trace id in headers). */
export function envelopeRecord(envelope: events.Envelope): {
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
} {
  return {
    key: envelope.candidateId,
    value: events.Envelope.encode(envelope).finish(),
    headers: eventRecordHeaders(envelope),
  };
}

/** Starts consuming merge requests; stop() the subscription to end it. */
export async function startMergeConsumer(
  bus: EventBus,
  markers: ProcessedEventsRepository,
  core: TensorMerge,
  options: MergeConsumerOptions = {},
): Promise<IdempotentSubscription> {
  const { logger } = options;
  const topics = options.topics ?? MERGE_TOPICS;
  return consumeIdempotently(
    bus,
    markers,
    {
      groupId: options.groupId ?? MERGE_CONSUMER_GROUP,
      topics: [topics.requested],
      consumerName: PRODUCER,
      eventId: (event) => {
        const header = event.headers[EVENT_ID_HEADER];
        return header !== undefined && header !== '' ? header : events.Envelope.decode(event.value).eventId;
      },
    },
    async (event, eventId) => {
      const request = events.Envelope.decode(event.value);
      const answer = (payload: events.Envelope['payload'], type: string): events.Envelope => ({
        eventId: derivedEventId(eventId, type),
        schemaVersion: 1,
        type,
        occurredAt: new Date(),
        traceId: request.traceId !== '' ? request.traceId : randomUUID(),
        searchId: request.searchId,
        candidateId: request.candidateId !== '' ? request.candidateId : event.key,
        causationId: eventId,
        producer: PRODUCER,
        payload,
      });
      const log = { eventId, traceId: request.traceId, candidateId: request.candidateId };
      let artifactId = '';
      try {
        if (request.schemaVersion !== 1) {
          throw new InvalidArgumentError(`schema_version ${request.schemaVersion} is not supported`, {
            field: 'schema_version',
          });
        }
        if (request.payload?.$case !== 'mergeRequested') {
          throw new InvalidArgumentError(
            `payload: expected merge_requested, got ${request.payload?.$case ?? 'none'}`,
            { field: 'payload' },
          );
        }
        const requested = request.payload.value;
        artifactId = requested.artifactId;
        const recipe = recipeFromWire(requested.recipe);
        const device = deviceFromWire(requested.device);
        const outcome = await core.merge(recipe, {
          ...(device === undefined ? {} : { device }),
          onPlanned: (planned) => {
            if (requested.artifactId !== '' && requested.artifactId !== planned.artifactId) {
              throw new InvalidArgumentError(
                `artifact_id: the request names ${requested.artifactId}, the recipe's content id is ${planned.artifactId}`,
                { field: 'artifact_id' },
              );
            }
            artifactId = planned.artifactId;
          },
        });
        const completed: events.MergeCompleted = {
          artifactId: outcome.artifactId,
          uri: outcome.uri,
          reused: outcome.reused,
          bytes: BigInt(outcome.outputBytes),
          elapsedSeconds: outcome.elapsedSeconds,
        };
        await bus.publish(topics.completed, [
          envelopeRecord(answer({ $case: 'mergeCompleted', value: completed }, TOPICS.MERGE_COMPLETED)),
        ]);
        logger?.info({ ...log, artifactId: outcome.artifactId, reused: outcome.reused }, 'merge completed');
      } catch (error) {
        const code = error instanceof Hm3Error ? error.status : 'INTERNAL';
        const message = error instanceof Error ? error.message : String(error);
        const failed: events.MergeFailed = {
          artifactId,
          failure: { code, message, retryable: RETRYABLE.has(code) },
        };
        await bus.publish(topics.failed, [
          envelopeRecord(answer({ $case: 'mergeFailed', value: failed }, TOPICS.MERGE_FAILED)),
        ]);
        logger?.warn({ ...log, code, err: error }, 'merge failed');
      }
    },
  );
}
