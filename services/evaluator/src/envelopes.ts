/**
 * Envelopes of the evaluation contract (events.proto): building an hm3.eval.requested (the system's
 * producer, used by the optimizer and by tests), and the Kafka record of any envelope (key = candidate
 * id; event id and trace id copied into headers).
 */
import { randomUUID } from 'node:crypto';
import { eventRecordHeaders, type EventBus } from '@hm3/events';
import { common, events, TOPICS } from '@hm3/proto';

export const SCHEMA_VERSION = 1;

/** Encodes an envelope as its Kafka record. */
export function envelopeRecord(envelope: events.Envelope): {
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
} {
  return {
    key: envelope.candidateId !== '' ? envelope.candidateId : envelope.searchId,
    value: events.Envelope.encode(envelope).finish(),
    headers: eventRecordHeaders(envelope),
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
