/**
 * The Kafka side of the evaluator: `hm3.eval.requested` -> evaluate -> `hm3.eval.completed` or
 * `hm3.eval.failed`, keyed by the candidate id. Idempotent: a (candidate, objective, split) already
 * scored is answered from the store, the answer's event id is derived from the request's (a repeated
 * answer carries the same id), and the processed marker is written after the answer is published.
 * A request past its deadline is answered `hm3.eval.failed` (DEADLINE_EXCEEDED) without evaluating, and
 * an evaluation still running at the deadline is stopped.
 */
import { randomUUID } from 'node:crypto';
import { Hm3Error, InvalidArgumentError } from '@hm3/errors';
import {
  consumeIdempotently,
  derivedEventId,
  EVENT_ID_HEADER,
  type EventBus,
  type IdempotentSubscription,
} from '@hm3/events';
import { events, TOPICS } from '@hm3/proto';
import type { ProcessedEventsRepository } from '@hm3/store';
import type { Logger } from '@hm3/service-kit';
import { envelopeRecord, SCHEMA_VERSION } from './envelopes.js';
import type { Evaluator } from './evaluator.js';
import { objectiveFromWire, scoreToWire, splitFromWire, targetFromWire } from './wire.js';

/** The consumer group of the built-in evaluator's replicas (k8s references it for lag-based scaling). */
export const EVAL_CONSUMER_GROUP = 'hm3-evaluator';
export const PRODUCER = 'evaluator';

const RETRYABLE = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'INTERNAL']);

export interface EvalTopics {
  readonly requested: string;
  readonly completed: string;
  readonly failed: string;
}

export const EVAL_TOPICS: EvalTopics = {
  requested: TOPICS.EVAL_REQUESTED,
  completed: TOPICS.EVAL_COMPLETED,
  failed: TOPICS.EVAL_FAILED,
};

export interface EvalConsumerOptions {
  readonly groupId?: string;
  /** Topic names (default the contract's hm3.eval.*; tests use their own). The envelope's type stays the contract's. */
  readonly topics?: EvalTopics;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** The clock deadlines are compared with (tests). */
  readonly now?: () => Date;
}

/** The event id of a record: its header, else the decoded envelope's. */
export function recordEventId(event: { headers: Record<string, string>; value: Uint8Array }): string {
  const header = event.headers[EVENT_ID_HEADER];
  return header !== undefined && header !== '' ? header : events.Envelope.decode(event.value).eventId;
}

/** Starts consuming evaluation requests; stop() the subscription to end it. */
export async function startEvalConsumer(
  bus: EventBus,
  markers: ProcessedEventsRepository,
  core: Evaluator,
  options: EvalConsumerOptions = {},
): Promise<IdempotentSubscription> {
  const { logger } = options;
  const topics = options.topics ?? EVAL_TOPICS;
  const now = options.now ?? (() => new Date());
  return consumeIdempotently(
    bus,
    markers,
    {
      groupId: options.groupId ?? EVAL_CONSUMER_GROUP,
      topics: [topics.requested],
      consumerName: PRODUCER,
      eventId: recordEventId,
    },
    async (event, eventId) => {
      const request = events.Envelope.decode(event.value);
      const answer = (payload: events.Envelope['payload'], type: string): events.Envelope => ({
        eventId: derivedEventId(eventId, type),
        schemaVersion: SCHEMA_VERSION,
        type,
        occurredAt: now(),
        traceId: request.traceId !== '' ? request.traceId : randomUUID(),
        searchId: request.searchId,
        candidateId: request.candidateId !== '' ? request.candidateId : event.key,
        causationId: eventId,
        producer: PRODUCER,
        payload,
      });
      const log = {
        eventId,
        traceId: request.traceId,
        candidateId: request.candidateId,
        searchId: request.searchId,
      };
      let timer: NodeJS.Timeout | undefined;
      try {
        if (request.schemaVersion !== SCHEMA_VERSION) {
          throw new InvalidArgumentError(`schema_version ${request.schemaVersion} is not supported`, {
            field: 'schema_version',
          });
        }
        if (request.payload?.$case !== 'evalRequested') {
          throw new InvalidArgumentError(
            `payload: expected eval_requested, got ${request.payload?.$case ?? 'none'}`,
            {
              field: 'payload',
            },
          );
        }
        const requested = request.payload.value;
        const controller = new AbortController();
        if (requested.deadline !== undefined) {
          const left = requested.deadline.getTime() - now().getTime();
          if (left <= 0) {
            throw new Hm3Error(
              `the deadline ${requested.deadline.toISOString()} passed before the evaluation started`,
              {
                status: 'DEADLINE_EXCEEDED',
                details: { deadline: requested.deadline.toISOString() },
              },
            );
          }
          timer = setTimeout(() => controller.abort(), left);
        }
        const outcome = await core.evaluate(
          {
            candidateId: request.candidateId !== '' ? request.candidateId : event.key,
            searchId: request.searchId,
            target: targetFromWire(requested.target),
            objectives: requested.objectives.map(objectiveFromWire),
            split: splitFromWire(requested.split),
          },
          { signal: controller.signal },
        );
        const completed: events.EvalCompleted = {
          scores: outcome.scores.map(scoreToWire),
          elapsedSeconds: outcome.elapsedSeconds,
        };
        await bus.publish(topics.completed, [
          envelopeRecord(answer({ $case: 'evalCompleted', value: completed }, TOPICS.EVAL_COMPLETED)),
        ]);
        logger?.info(
          { ...log, scores: outcome.scores.map((s) => ({ [s.objective]: s.value, reused: s.reused })) },
          'evaluation completed',
        );
      } catch (error) {
        let code = error instanceof Hm3Error ? error.status : 'INTERNAL';
        // A run stopped by the deadline's abort reports the deadline, not a cancellation.
        if (code === 'CANCELLED') code = 'DEADLINE_EXCEEDED';
        const message = error instanceof Error ? error.message : String(error);
        const failed: events.EvalFailed = { failure: { code, message, retryable: RETRYABLE.has(code) } };
        await bus.publish(topics.failed, [
          envelopeRecord(answer({ $case: 'evalFailed', value: failed }, TOPICS.EVAL_FAILED)),
        ]);
        logger?.warn({ ...log, code, err: error }, 'evaluation failed');
      } finally {
        if (timer) clearTimeout(timer);
      }
    },
  );
}
