import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { merge } from '@hm3/proto';
import { createClient } from '@hm3/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../main.js';
import { startService } from './serve.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-serve-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hm3 serve', () => {
  it('refuses the services that are not built yet, and unknown ones, with a clear message', async () => {
    await expect(startService('evaluator', {}, [], {})).rejects.toThrow(
      'service "evaluator" is not built yet; only tensor-merge can be served for now',
    );
    await expect(startService('nope', {}, [], {})).rejects.toThrow(/unknown service "nope"/);
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      expect(await run(['node', 'hm3', 'serve', 'rl-policy'])).toBe(1);
    } finally {
      console.error = original;
    }
    expect(errors.join('\n')).toContain('not built yet');
  });

  it('requires a models root', async () => {
    await expect(startService('tensor-merge', {}, ['--allow-unauthenticated'], {})).rejects.toThrow(
      /--models-root/,
    );
  });

  it('serves tensor-merge over gRPC with settings from flags and env', async () => {
    const handle = await startService(
      'tensor-merge',
      { modelsRoot: dir, store: 'memory' },
      ['tensor-merge', '--port', '0', '--allow-unauthenticated', '--host=127.0.0.1'],
      {
        HM3_METRICS_PORT: 'off',
        HM3_ARTIFACT_ROOT: path.join(dir, 'artifacts'),
        HM3_LOG_LEVEL: 'silent',
        HM3_BUS: 'in-process',
      },
    );
    try {
      const client = createClient(merge.TensorMergeServiceService, { address: `127.0.0.1:${handle.port}` });
      const { methods } = await client.listMethods({});
      expect(methods.map((m) => m.name)).toContain('task_arithmetic');
    } finally {
      await handle.stop('test over');
    }
  });
});
