// Graceful shutdown. The acceptance test runs a real server in a child process, sends it SIGTERM
// in the middle of a slow call and checks: the call completes OK, health turns NOT_SERVING while
// the server drains, the child exits 0.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { checkHealth, createClient, type HealthStatus } from './client.js';
import { loadServiceConfig } from './config.js';
import {
  echoHandlers,
  EchoService,
  tempDir,
  writeTokenFile,
  type Observed,
} from './echo-service.test-helper.js';
import { createServer } from './server.js';

const TOKEN = 'acceptance-token-42';

describe('graceful shutdown', () => {
  it('SIGTERM mid-call: the call completes OK, health is NOT_SERVING during the drain, exit code 0', async () => {
    const tokenFile = join(tempDir(), 'tokens');
    writeTokenFile(tokenFile, [TOKEN]);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'slow-server.test-helper.ts'),
        '--shutdown-grace-ms',
        '8000',
      ],
      {
        cwd: join(import.meta.dirname, '..'),
        env: {
          ...process.env,
          HM3_HOST: '127.0.0.1',
          HM3_PORT: '0',
          HM3_METRICS_PORT: 'off',
          HM3_TOKEN_FILE: tokenFile,
          HM3_SHUTDOWN_DRAIN_DELAY_MS: '800',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const logs: Array<Record<string, unknown>> = [];
    const listening = new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'server listening') resolve(entry.port as number);
      });
      void exited.then(() => reject(new Error(`child exited before listening: ${stderr}`)));
    });
    try {
      const port = await listening;
      const address = `127.0.0.1:${port}`;
      const echo = createClient(EchoService, { address, token: TOKEN });
      const anonymous = createClient(EchoService, { address });
      await expect(anonymous.echo({ text: 'no token' }).catch((e: { code: number }) => e.code)).resolves.toBe(
        status.UNAUTHENTICATED,
      );
      anonymous.close();
      await expect(checkHealth({ address })).resolves.toBe('SERVING');

      const slow = echo.echo(
        { text: 'slow', delayMs: 1500 },
        { traceId: 'acceptance-trace', deadlineMs: 10_000 },
      );
      await sleep(300);
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      const seen: HealthStatus[] = [];
      while (Date.now() - signalledAt < 700 && !seen.includes('NOT_SERVING')) {
        seen.push(await checkHealth({ address }).catch(() => 'UNKNOWN' as const));
        await sleep(30);
      }
      expect(seen).toContain('NOT_SERVING');

      await expect(slow).resolves.toEqual({ text: 'slow', traceId: 'acceptance-trace' });
      expect(Date.now() - signalledAt).toBeGreaterThan(1000);
      echo.close();
      await expect(exited).resolves.toEqual({ code: 0, signal: null });
      expect(logs).toContainEqual(
        expect.objectContaining({
          msg: 'rpc',
          traceId: 'acceptance-trace',
          code: 'OK',
          service: 'slow-echo',
        }),
      );
      expect(logs).toContainEqual(expect.objectContaining({ msg: 'server stopped', drained: true }));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 30_000);

  it('cancels calls still running when the grace period is over', async () => {
    const observed: Observed = { calls: 0, aborted: [] };
    const config = loadServiceConfig({
      defaults: {
        host: '127.0.0.1',
        port: 0,
        metricsPort: null,
        allowUnauthenticated: true,
        logLevel: 'silent',
      },
      env: { HM3_SHUTDOWN_DRAIN_DELAY_MS: '50', HM3_SHUTDOWN_GRACE_MS: '400' },
    });
    const server = createServer(config).addService(EchoService, echoHandlers(observed));
    await server.start();
    const echo = createClient(EchoService, { address: `127.0.0.1:${server.port}`, retry: false });
    const stuck = echo.echo({ text: 'stuck', delayMs: 60_000 }).catch((e: { code: number }) => e.code);
    await sleep(100);
    const started = Date.now();
    await server.shutdown('test');
    expect(Date.now() - started).toBeLessThan(2000);
    expect([status.CANCELLED, status.UNAVAILABLE]).toContain(await stuck);
    expect(observed.aborted.map((a) => a.path)).toEqual(['/hm3.test.Echo/Echo']);
    expect(server.inFlight).toBe(0);
    echo.close();
  });
});
