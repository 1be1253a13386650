import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EchoService } from './echo-service.test-helper.js';
import {
  ActiveCalls,
  splitPath,
  wrapService,
  type ServiceHandlers,
  type WrapDependencies,
} from './handlers.js';
import { createLogger } from './logging.js';
import { RpcMetrics } from './metrics.js';

const deps: WrapDependencies = {
  tokens: undefined,
  logger: createLogger({ level: 'silent' }),
  metrics: new RpcMetrics(new Registry()),
  active: new ActiveCalls(),
};

describe('wrapService', () => {
  it('wraps every method of the definition by its key', () => {
    const implementation = wrapService(
      EchoService,
      { echo: (request) => ({ text: request.text, traceId: '' }), count: async function* () {} },
      deps,
    );
    expect(Object.keys(implementation).sort()).toEqual(['count', 'echo']);
  });

  it('refuses a missing handler and a client-streaming method, naming the method', () => {
    expect(() =>
      wrapService(EchoService, { echo: () => ({ text: '', traceId: '' }) } as never, deps),
    ).toThrow('no handler for /hm3.test.Echo/Count');
    const upload = {
      upload: { ...EchoService.echo, path: '/hm3.test.Echo/Upload', requestStream: true },
    } as const;
    expect(() => wrapService(upload, { upload: (() => undefined) as never }, deps)).toThrow(
      '/hm3.test.Echo/Upload is client- or bidi-streaming',
    );
  });

  it('types handlers from the definition', () => {
    const handlers: ServiceHandlers<typeof EchoService> = {
      // @ts-expect-error a server-streaming method needs an AsyncIterable, not a Promise
      count: async () => ({ n: 1 }),
      // @ts-expect-error the reply needs traceId
      echo: (request) => ({ text: request.text }),
    };
    expect(Object.keys(handlers)).toHaveLength(2);
  });

  it('splits method paths', () => {
    expect(splitPath('/hm3.v1.TensorMergeService/Merge')).toEqual({
      service: 'hm3.v1.TensorMergeService',
      method: 'Merge',
    });
    expect(() => splitPath('Merge')).toThrow('not a gRPC method path');
  });
});
