import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { merge, optimizer, policy } from '@hm3/proto';
import { createClient } from '@hm3/service-kit';
import type { RunningTensorMerge } from '@hm3/tensor-merge';
import { FailedPreconditionError } from '@hm3/errors';
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
  it('refuses unknown services, and a pareto-optimizer without a models root, with a clear message', async () => {
    await expect(startService('pareto-optimizer', {}, ['--allow-unauthenticated'], {})).rejects.toThrow(
      /models root: set --models-root/,
    );
    await expect(startService('nope', {}, [], {})).rejects.toThrow(/unknown service "nope"/);
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      expect(await run(['node', 'hm3', 'serve', 'pareto-optimizer'])).toBe(1);
    } finally {
      console.error = original;
    }
    // Without settings the process refuses to start unauthenticated, naming the setting.
    expect(errors.join('\n')).toMatch(/invalid service config: tokenFile/);
  });

  it('refuses a numeric setting that is not an integer in range, naming it', async () => {
    const start = (env: Record<string, string>, threads?: string) =>
      startService(
        'pareto-optimizer',
        { modelsRoot: dir, ...(threads === undefined ? {} : { threads }) },
        ['--allow-unauthenticated'],
        env,
      );
    await expect(start({ HM3_OPTIMIZER_CONCURRENCY: 'many' })).rejects.toThrow(
      /HM3_OPTIMIZER_CONCURRENCY: "many" must be an integer >= 1/,
    );
    await expect(start({ HM3_ATTEMPT_TIMEOUT_MS: '0' })).rejects.toThrow(/HM3_ATTEMPT_TIMEOUT_MS: "0"/);
    await expect(start({ HM3_RETENTION_ROUNDS: '2.5' })).rejects.toThrow(/HM3_RETENTION_ROUNDS: "2.5"/);
    await expect(
      start({ HM3_BUS: 'kafka', HM3_KAFKA_BROKERS: '127.0.0.1:1', HM3_KAFKA_PARTITIONS: '-1' }),
    ).rejects.toThrow(/HM3_KAFKA_PARTITIONS: "-1"/);
    await expect(start({}, 'two')).rejects.toThrow(/threads: "two" must be an integer >= 1/);
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

  it('takes the default device of tensor-merge from HM3_DEVICE (or --device), refusing an unknown one', async () => {
    const env = {
      HM3_METRICS_PORT: 'off',
      HM3_ARTIFACT_ROOT: path.join(dir, 'artifacts'),
      HM3_LOG_LEVEL: 'silent',
    };
    const argv = ['tensor-merge', '--port', '0', '--allow-unauthenticated', '--host=127.0.0.1'];
    await expect(
      startService('tensor-merge', { modelsRoot: dir }, argv, { ...env, HM3_DEVICE: 'gpu' }),
    ).rejects.toThrow('HM3_DEVICE: "gpu" is not a device; use cpu or cuda');
    await expect(
      startService('tensor-merge', { modelsRoot: dir, device: 'cuda:0' }, argv, {
        ...env,
        HM3_DEVICE: 'cpu',
      }),
    ).rejects.toThrow('--device: "cuda:0" is not a device; use cpu or cuda');
    // HM3_DEVICE=cuda (the k8s gpu overlay): a merge naming no device runs on cuda, which fails here
    // (no CUDA provider libraries on this machine) with FAILED_PRECONDITION before any weight is read
    const handle = await startService('tensor-merge', { modelsRoot: dir }, argv, {
      ...env,
      HM3_DEVICE: 'cuda',
    });
    try {
      const core = (handle.running as RunningTensorMerge).core;
      const error = await core.merge({} as Parameters<typeof core.merge>[0]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FailedPreconditionError);
      expect((error as Error).message).toMatch(/^device cuda: /);
    } finally {
      await handle.stop('test over');
    }
  });

  it('serves pareto-optimizer over gRPC (in-process bus, memory store): an empty spec is refused naming the field', async () => {
    const handle = await startService(
      'pareto-optimizer',
      { modelsRoot: dir, store: 'memory', bus: 'in-process' },
      ['pareto-optimizer', '--port', '0', '--allow-unauthenticated', '--host=127.0.0.1'],
      { HM3_METRICS_PORT: 'off', HM3_LOG_LEVEL: 'silent', HM3_ARTIFACT_ROOT: path.join(dir, 'artifacts') },
    );
    try {
      const client = createClient(optimizer.ParetoOptimizerServiceService, {
        address: `127.0.0.1:${handle.port}`,
      });
      expect((await client.listSearches({ pageSize: 0, pageToken: '', state: 0 })).searches).toEqual([]);
      await expect(client.startSearch({ searchId: '' })).rejects.toThrow(/INVALID_ARGUMENT: spec: base/);
      client.close();
    } finally {
      await handle.stop('test over');
    }
  });

  it('serves rl-policy over gRPC: a policy created there is proposed from', async () => {
    const handle = await startService(
      'rl-policy',
      { store: 'memory', artifactRoot: path.join(dir, 'rl-artifacts') },
      ['rl-policy', '--port', '0', '--allow-unauthenticated', '--host=127.0.0.1'],
      { HM3_METRICS_PORT: 'off', HM3_LOG_LEVEL: 'silent' },
    );
    try {
      const client = createClient(policy.PolicyServiceService, { address: `127.0.0.1:${handle.port}` });
      const spec = policy.PolicySpec.fromPartial({
        pool: [{ modelId: 'a' }, { modelId: 'b' }],
        numLayers: 3,
        tMax: 2,
        numObjectives: 1,
        settings: { hiddenSize: 8 },
      });
      const { policyId } = await client.createPolicy({ policyId: 'serve-test', spec });
      const { paths } = await client.proposePaths({
        policyId,
        preference: { weights: [1] },
        count: 2,
        greedy: false,
      });
      expect(paths.map((p) => p.path?.steps.length)).toEqual([2, 2]);
      client.close();
    } finally {
      await handle.stop('test over');
    }
  });
});
