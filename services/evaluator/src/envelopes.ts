/**
 * Envelopes of the evaluation contract (events.proto): building an hm3.eval.requested (the system's
 * producer, used by the optimizer and by tests), and the Kafka record of any envelope (key = candidate
 * id; event id and trace id copied into headers).
 */
import { createHash, randomUUID } from 'node:crypto';
import { EVENT_ID_HEADER, type EventBus } from '@hm3/events';
import { common, events, TOPICS } from '@hm3/proto';

/** Header carrying the envelope's trace id. */
export const TRACE_ID_HEADER = 'hm3-trace-id';
export const SCHEMA_VERSION = 1;

/** A UUID-shaped id derived from the cause's event id, so a repeated answer has the same id. */
export function derivedEventId(causeId: string, type: string): string {
  const h = createHash('sha256').update(`${causeId}\n${type}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Encodes an envelope as its Kafka record. */
export function envelopeRecord(envelope: events.Envelope): {
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
} {
  return {
    key: envelope.candidateId !== '' ? envelope.candidateId : envelope.searchId,
    value: events.Envelope.encode(envelope).finish(),
    headers: { [EVENT_ID_HEADER]: envelope.eventId, [TRACE_ID_HEADER]: envelope.traceId },
  };
}

export interface EvalRequestInput {
  readonly candidateId: string;
  readonly searchId?: string;
  readonly traceId?: string;
  readonly eventId?: string;
  readonly producer?: string;
  readonly target:
    | { readonly $case: 'model'; readonly value: common.ModelRef }
    | { readonly $case: 'path'; readonly value: common.InferencePath };
  readonly objectives: readonly common.Objective[];
  readonly split?: common.Split;
  readonly deadline?: Date;
}

/** The hm3.eval.requested envelope of a candidate to score. */
export function evalRequestedEnvelope(input: EvalRequestInput): events.Envelope {
  return {
    eventId: input.eventId ?? randomUUID(),
    schemaVersion: SCHEMA_VERSION,
    type: TOPICS.EVAL_REQUESTED,
    occurredAt: new Date(),
    traceId: input.traceId ?? randomUUID(),
    searchId: input.searchId ?? '',
    candidateId: input.candidateId,
    causationId: '',
    producer: input.producer ?? 'hm3',
    payload: {
      $case: 'evalRequested',
      value: {
        target: input.target,
        objectives: [...input.objectives],
        split: input.split ?? common.Split.SEARCH,
        ...(input.deadline === undefined ? {} : { deadline: input.deadline }),
      },
    },
  };
}

/** Publishes an evaluation request; returns its envelope (its event id is what the answer's causation_id names). */
export async function publishEvalRequest(
  bus: EventBus,
  input: EvalRequestInput,
  topic: string = TOPICS.EVAL_REQUESTED,
): Promise<events.Envelope> {
  const envelope = evalRequestedEnvelope(input);
  await bus.publish(topic, [envelopeRecord(envelope)]);
  return envelope;
}
