/**
 * Trace ids: taken from the `x-trace-id` metadata of an incoming call (or generated), kept in an
 * AsyncLocalStorage while the handler runs, and sent on by every client call made inside it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';

export const TRACE_ID_HEADER = 'x-trace-id';

const storage = new AsyncLocalStorage<string>();
const VALID = /^[\w.:-]{1,128}$/;

/** 32 hex characters, the W3C trace-id shape. */
export function newTraceId(): string {
  return randomBytes(16).toString('hex');
}

/** The incoming trace id when it is well formed, otherwise a fresh one. */
export function traceIdFrom(metadata: Metadata): string {
  const value = metadata.get(TRACE_ID_HEADER)[0];
  return typeof value === 'string' && VALID.test(value) ? value : newTraceId();
}

/** The trace id of the RPC (or `withTraceId` scope) this code runs in. */
export function currentTraceId(): string | undefined {
  return storage.getStore();
}

export function withTraceId<T>(traceId: string, fn: () => T): T {
  return storage.run(traceId, fn);
}
