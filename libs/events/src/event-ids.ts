/**
 * The ids an HM3 event carries outside its envelope (docs/events.md): the headers of its record, and
 * the id of an answer derived from its cause, shared by every producer so the contract is defined once.
 */
import { createHash } from 'node:crypto';
import { EVENT_ID_HEADER, type EventHeaders } from './event-bus.js';

/** The header carrying the envelope's trace id (the event id travels in EVENT_ID_HEADER). */
export const EVENT_TRACE_ID_HEADER = 'hm3-trace-id';

/** The headers of an envelope's record: its event id and trace id, copied from the envelope. */
export function eventRecordHeaders(ids: {
  readonly eventId: string;
  readonly traceId: string;
}): EventHeaders {
  return { [EVENT_ID_HEADER]: ids.eventId, [EVENT_TRACE_ID_HEADER]: ids.traceId };
}

/** A UUID-shaped id derived from the cause's event id and the answer's type: a repeated answer has the same id. */
export function derivedEventId(causeId: string, type: string): string {
  const h = createHash('sha256').update(`${causeId}\n${type}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
