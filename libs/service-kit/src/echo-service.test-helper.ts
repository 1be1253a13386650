// A tiny hand-built grpc-js ServiceDefinition (JSON over Buffers) and its handlers, shared by the
// tests and by the child process of the shutdown acceptance test.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, UnavailableError } from '@hm3/errors';
import type { ServiceHandlers } from './handlers.js';

export interface EchoRequest {
  text: string;
  /** The handler waits this long (aborting with the call) before answering. */
  delayMs?: number;
  /** `invalid`: InvalidArgumentError; `crash`: a plain Error; `unavailable-N`: UnavailableError for the first N calls. */
  fail?: string;
}
export interface EchoReply {
  text: string;
  traceId: string;
}
export interface CountRequest {
  to: number;
  intervalMs?: number;
}
export interface CountReply {
  n: number;
}

const encode = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');
function decoder<T>(): (bytes: Buffer) => T {
  return (bytes) => JSON.parse(bytes.toString('utf8')) as T;
}

export const EchoService = {
  echo: {
    path: '/hm3.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: EchoRequest) => encode(value),
    requestDeserialize: decoder<EchoRequest>(),
    responseSerialize: (value: EchoReply) => encode(value),
    responseDeserialize: decoder<EchoReply>(),
  },
  count: {
    path: '/hm3.test.Echo/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: (value: CountRequest) => encode(value),
    requestDeserialize: decoder<CountRequest>(),
    responseSerialize: (value: CountReply) => encode(value),
    responseDeserialize: decoder<CountReply>(),
  },
} as const;

/** What the handlers saw, for assertions. */
export interface Observed {
  calls: number;
  aborted: Array<{ path: string; reason: string }>;
}

export function echoHandlers(
  observed: Observed = { calls: 0, aborted: [] },
): ServiceHandlers<typeof EchoService> {
  return {
    echo: async (request, context) => {
      observed.calls++;
      context.signal.addEventListener('abort', () => {
        observed.aborted.push({
          path: context.path,
          reason: String((context.signal.reason as Error).message),
        });
      });
      if (request.delayMs !== undefined) await sleep(request.delayMs, undefined, { signal: context.signal });
      if (request.fail === 'invalid')
        throw new InvalidArgumentError(`text must not be "${request.text}"`, { field: 'text' });
      if (request.fail === 'crash') throw new Error('database password is hunter2');
      const unavailable = /^unavailable-(\d+)$/.exec(request.fail ?? '');
      if (unavailable !== null && observed.calls <= Number(unavailable[1]))
        throw new UnavailableError('try again');
      return { text: request.text, traceId: context.traceId };
    },
    count: async function* (request, context) {
      for (let n = 1; n <= request.to; n++) {
        if (request.intervalMs !== undefined)
          await sleep(request.intervalMs, undefined, { signal: context.signal });
        yield { n };
      }
    },
  };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'hm3-service-kit-'));
}

export function writeTokenFile(file: string, tokens: string[]): void {
  writeFileSync(file, ['# accepted bearer tokens', ...tokens, ''].join('\n'));
}

/** A pino destination that keeps the parsed lines. */
export function logCapture(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { stream, lines };
}
