// The server and client over real loopback gRPC: auth, rotation, errors, deadlines, streaming,
// metrics, logs, size limits, retries, reflection.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  credentials,
  loadPackageDefinition,
  status,
  type ClientDuplexStream,
  type GrpcObject,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth, createClient, type ClientOptions } from './client.js';
import { loadServiceConfig } from './config.js';
import {
  echoHandlers,
  EchoService,
  logCapture,
  tempDir,
  writeTokenFile,
  type Observed,
} from './echo-service.test-helper.js';
import { createLogger } from './logging.js';
import { createServer, type ServiceServer } from './server.js';

const TOKEN = 'token-one-0123456789';

function errorCode(promise: Promise<unknown>): Promise<number | undefined> {
  return promise.then(
    () => undefined,
    (error: { code?: number }) => error.code,
  );
}

describe('service-kit server over loopback gRPC', () => {
  const dir = tempDir();
  const tokenFile = join(dir, 'tokens');
  const logs = logCapture();
  const observed: Observed = { calls: 0, aborted: [] };
  let server: ServiceServer;
  let client: ClientOptions;

  beforeAll(async () => {
    writeTokenFile(tokenFile, [TOKEN, 'token-two-abcdefghij']);
    const config = loadServiceConfig({
      env: { HM3_HOST: '127.0.0.1', HM3_PORT: '0', HM3_METRICS_PORT: '0', HM3_TOKEN_FILE: tokenFile },
      argv: [
        '--token-reload-interval-ms',
        '50',
        '--max-receive-message-bytes=2048',
        '--shutdown-drain-delay-ms=0',
      ],
    });
    server = createServer(config, {
      logger: createLogger({ level: 'info', name: 'echo', destination: logs.stream }),
    });
    server.addService(EchoService, echoHandlers(observed));
    await server.start();
    client = { address: `127.0.0.1:${server.port}`, token: TOKEN };
  });

  afterAll(async () => {
    await server.shutdown('test over');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers health SERVING without a token, for the server and the service', async () => {
    await expect(checkHealth({ address: client.address })).resolves.toBe('SERVING');
    await expect(checkHealth({ address: client.address }, 'hm3.test.Echo')).resolves.toBe('SERVING');
  });

  it('refuses a call without a token or with a wrong one, and accepts the right one', async () => {
    const anonymous = createClient(EchoService, { address: client.address });
    const wrong = createClient(EchoService, { address: client.address, token: 'token-one-012345678X' });
    const right = createClient(EchoService, client);
    try {
      await expect(errorCode(anonymous.echo({ text: 'hi' }))).resolves.toBe(status.UNAUTHENTICATED);
      await expect(errorCode(wrong.echo({ text: 'hi' }))).resolves.toBe(status.UNAUTHENTICATED);
      await expect(right.echo({ text: 'hi' })).resolves.toMatchObject({ text: 'hi' });
    } finally {
      for (const c of [anonymous, wrong, right]) c.close();
    }
  });

  it('accepts a rotated token and refuses the old one without a restart', async () => {
    const rotated = 'token-three-rotated-xyz';
    const oldClient = createClient(EchoService, { address: client.address, token: 'token-two-abcdefghij' });
    const newClient = createClient(EchoService, { address: client.address, token: rotated });
    try {
      await expect(oldClient.echo({ text: 'before' })).resolves.toMatchObject({ text: 'before' });
      await expect(errorCode(newClient.echo({ text: 'before' }))).resolves.toBe(status.UNAUTHENTICATED);
      writeTokenFile(tokenFile, [TOKEN, rotated]);
      let accepted = false;
      for (let i = 0; i < 100 && !accepted; i++) {
        await sleep(50);
        accepted = (await errorCode(newClient.echo({ text: 'after' }))) === undefined;
      }
      expect(accepted).toBe(true);
      await expect(errorCode(oldClient.echo({ text: 'after' }))).resolves.toBe(status.UNAUTHENTICATED);
    } finally {
      oldClient.close();
      newClient.close();
    }
  });

  it('maps an Hm3Error to its status and message, anything else to a generic INTERNAL', async () => {
    const echo = createClient(EchoService, client);
    try {
      const invalid = await echo
        .echo({ text: 'bad', fail: 'invalid' })
        .catch((e: { code: number; details: string }) => e);
      expect(invalid).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'text must not be "bad"' });
      const crash = await echo
        .echo({ text: 'x', fail: 'crash' })
        .catch((e: { code: number; details: string }) => e);
      expect(crash).toMatchObject({ code: status.INTERNAL });
      expect((crash as { details: string }).details).toMatch(/^internal error \(request [0-9a-f-]{36}\)$/);
      expect(JSON.stringify(crash)).not.toContain('hunter2');
      const logged = logs.lines.find((l) => l.msg === 'rpc failed');
      expect(JSON.stringify(logged)).toContain('hunter2');
    } finally {
      echo.close();
    }
  });

  it('logs one line per RPC with the request id and the trace id from x-trace-id', async () => {
    const echo = createClient(EchoService, client);
    try {
      const reply = await echo.echo({ text: 'traced' }, { traceId: 'trace-abc-123' });
      expect(reply.traceId).toBe('trace-abc-123');
      const lines = logs.lines.filter((l) => l.msg === 'rpc' && l.traceId === 'trace-abc-123');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ rpc: '/hm3.test.Echo/Echo', code: 'OK', service: 'echo' });
      expect(lines[0]?.requestId).toMatch(/^[0-9a-f-]{36}$/);
      const generated = await echo.echo({ text: 'untraced' });
      expect(generated.traceId).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      echo.close();
    }
  });

  it('sends the trace id of the RPC on with client calls made inside its handler', async () => {
    const downstream = createClient(EchoService, client);
    const relay = createServer(
      loadServiceConfig({
        defaults: {
          host: '127.0.0.1',
          port: 0,
          metricsPort: null,
          allowUnauthenticated: true,
          logLevel: 'silent',
        },
      }),
    ).addService(EchoService, {
      echo: (request) => downstream.echo({ text: `relayed ${request.text}` }),
      count: async function* () {},
    });
    await relay.start();
    const caller = createClient(EchoService, { address: `127.0.0.1:${relay.port}` });
    try {
      const reply = await caller.echo({ text: 'hop' }, { traceId: 'relay-trace-7' });
      expect(reply).toEqual({ text: 'relayed hop', traceId: 'relay-trace-7' });
    } finally {
      caller.close();
      downstream.close();
      await relay.shutdown();
    }
  });

  it('streams a server-streaming method', async () => {
    const echo = createClient(EchoService, client);
    try {
      const seen: number[] = [];
      for await (const message of echo.count({ to: 5 })) seen.push(message.n);
      expect(seen).toEqual([1, 2, 3, 4, 5]);
      const anonymous = createClient(EchoService, { address: client.address });
      const refused = (async () => {
        for await (const _ of anonymous.count({ to: 2 })) throw new Error('no message expected');
      })();
      await expect(errorCode(refused)).resolves.toBe(status.UNAUTHENTICATED);
      anonymous.close();
    } finally {
      echo.close();
    }
  });

  it('honours deadlines: DEADLINE_EXCEEDED at the client, cancellation seen by the handler', async () => {
    const echo = createClient(EchoService, client);
    try {
      const before = observed.aborted.length;
      const started = Date.now();
      await expect(errorCode(echo.echo({ text: 'slow', delayMs: 5000 }, { deadlineMs: 200 }))).resolves.toBe(
        status.DEADLINE_EXCEEDED,
      );
      expect(Date.now() - started).toBeLessThan(2000);
      for (let i = 0; i < 40 && observed.aborted.length === before; i++) await sleep(25);
      expect(observed.aborted.slice(before)).toEqual([
        { path: '/hm3.test.Echo/Echo', reason: 'deadline exceeded' },
      ]);
      const stream = (async () => {
        for await (const _ of echo.count({ to: 100, intervalMs: 100 }, { deadlineMs: 250 })) {
          /* drain */
        }
      })();
      await expect(errorCode(stream)).resolves.toBe(status.DEADLINE_EXCEEDED);
    } finally {
      echo.close();
    }
  });

  it('refuses a message over the size limit with RESOURCE_EXHAUSTED', async () => {
    const echo = createClient(EchoService, client);
    try {
      await expect(errorCode(echo.echo({ text: 'x'.repeat(4096) }))).resolves.toBe(status.RESOURCE_EXHAUSTED);
      await expect(echo.echo({ text: 'x'.repeat(1000) })).resolves.toMatchObject({ text: 'x'.repeat(1000) });
    } finally {
      echo.close();
    }
  });

  it('serves Prometheus metrics with the RPC counter, the histogram, the gauge and node metrics', async () => {
    const echo = createClient(EchoService, client);
    await echo.echo({ text: 'counted' });
    echo.close();
    const response = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(
      /grpc_server_handled_total\{grpc_service="hm3\.test\.Echo",grpc_method="Echo",grpc_type="unary",grpc_code="OK"\} [1-9]\d*/,
    );
    expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_code="UNAUTHENTICATED"\} [1-9]/);
    expect(text).toContain('grpc_server_handling_seconds_bucket');
    expect(text).toMatch(/grpc_server_in_flight\{grpc_service="hm3\.test\.Echo",grpc_method="Echo"\} 0/);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect((await fetch(`http://127.0.0.1:${server.metricsPort}/other`)).status).toBe(404);
  });

  it('lists the health service through reflection', async () => {
    const reflectionProto = join(
      import.meta.dirname,
      '../../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
    );
    const loaded = loadPackageDefinition(loadSync(reflectionProto, { keepCase: true }));
    const v1 = ((loaded.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject;
    const Reflection = v1.ServerReflection as ServiceClientConstructor;
    const reflection = new Reflection(client.address, credentials.createInsecure());
    const services = await new Promise<string[]>((resolve, reject) => {
      const open = reflection.ServerReflectionInfo;
      if (open === undefined) throw new Error('no ServerReflectionInfo method');
      const call = open.call(reflection) as ClientDuplexStream<unknown, unknown>;
      call.on('data', (response: { list_services_response?: { service: Array<{ name: string }> } }) => {
        resolve(response.list_services_response?.service.map((s) => s.name) ?? []);
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    reflection.close();
    expect(services).toContain('grpc.health.v1.Health');
  });
});

describe('client retries', () => {
  it('retries UNAVAILABLE with backoff, and does not when retries are off', async () => {
    const observed: Observed = { calls: 0, aborted: [] };
    const config = loadServiceConfig({
      defaults: {
        host: '127.0.0.1',
        port: 0,
        metricsPort: null,
        allowUnauthenticated: true,
        shutdownDrainDelayMs: 0,
        logLevel: 'silent',
      },
    });
    const server = createServer(config).addService(EchoService, echoHandlers(observed));
    await server.start();
    const address = `127.0.0.1:${server.port}`;
    try {
      const retrying = createClient(EchoService, {
        address,
        retry: { maxAttempts: 4, initialBackoffMs: 20 },
      });
      await expect(retrying.echo({ text: 'eventually', fail: 'unavailable-2' })).resolves.toMatchObject({
        text: 'eventually',
      });
      expect(observed.calls).toBe(3);
      retrying.close();
      observed.calls = 0;
      const once = createClient(EchoService, { address, retry: false });
      await expect(errorCode(once.echo({ text: 'no retry', fail: 'unavailable-2' }))).resolves.toBe(
        status.UNAVAILABLE,
      );
      expect(observed.calls).toBe(1);
      once.close();
    } finally {
      await server.shutdown();
    }
  });
});
