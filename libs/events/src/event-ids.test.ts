import { describe, expect, it } from 'vitest';
import { EVENT_ID_HEADER } from './event-bus.js';
import { derivedEventId, EVENT_TRACE_ID_HEADER, eventRecordHeaders } from './event-ids.js';

describe('event ids', () => {
  it('derives a UUID-shaped answer id from the cause and the type, the same every time', () => {
    const id = derivedEventId('cause-1', 'hm3.eval.completed');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(derivedEventId('cause-1', 'hm3.eval.completed')).toBe(id);
    expect(derivedEventId('cause-1', 'hm3.eval.failed')).not.toBe(id);
    expect(derivedEventId('cause-2', 'hm3.eval.completed')).not.toBe(id);
  });

  it("copies the envelope's event and trace ids into the record headers", () => {
    expect(eventRecordHeaders({ eventId: 'e-1', traceId: 't-1' })).toEqual({
      [EVENT_ID_HEADER]: 'e-1',
      [EVENT_TRACE_ID_HEADER]: 't-1',
    });
    expect(EVENT_TRACE_ID_HEADER).toBe('hm3-trace-id');
  });
});
