// `hm3 serve evaluator`: EvaluatorService over gRPC, the zoo as models root, an in-process bus.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { zooRoot } from '@hm3/fixtures';
import { common, evaluator } from '@hm3/proto';
import type { RunningEvaluator } from '@hm3/evaluator';
import { createClient } from '@hm3/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from './serve.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-serve-evaluator-'));
  await writeFile(
    path.join(dir, 'qa.jsonl'),
    '{"prompt":"12+34=","answer":"640"}\n{"prompt":"50-20=","answer":"030"}\n',
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hm3 serve evaluator', () => {
  it('serves EvaluatorService: tasks listed, a dataset inside --dataset-roots scored, one outside refused', async () => {
    const handle = await startService(
      'evaluator',
      { modelsRoot: zooRoot, store: 'memory', datasetRoots: dir, threads: '1' },
      ['evaluator', '--port', '0', '--allow-unauthenticated', '--host=127.0.0.1'],
      { HM3_METRICS_PORT: 'off', HM3_ARTIFACT_ROOT: path.join(dir, 'artifacts'), HM3_LOG_LEVEL: 'silent' },
    );
    const client = createClient(evaluator.EvaluatorServiceService, { address: `127.0.0.1:${handle.port}` });
    try {
      // a process that only scores: denormals flushed by default, as the runtime bench runs
      expect((handle.running as RunningEvaluator).core.runtime('cpu').flushDenormals).toBe(true);
      const { tasks } = await client.listTasks({});
      expect(tasks.map((t) => t.name)).toContain('completion');
      const request = (uri: string) =>
        evaluator.EvaluateRequest.fromPartial({
          target: { $case: 'model', value: { uri: 'expert-math', modelId: '' } },
          objectives: [{ name: 'qa', task: 'completion', dataset: { uri, datasetId: '', sha256: '' } }],
          split: common.Split.FULL,
        });
      const messages: evaluator.EvaluateResponse[] = [];
      for await (const m of client.evaluate(request('qa.jsonl'))) messages.push(m);
      const result = messages.at(-1)!.event!.value as evaluator.EvaluateResult;
      expect(result.scores[0]).toMatchObject({ objective: 'qa', exampleCount: 2, split: common.Split.FULL });
      const refused = (async () => {
        for await (const _ of client.evaluate(request(path.join(zooRoot, 'datasets/math/search.jsonl'))))
          void _;
      })();
      await expect(refused).rejects.toMatchObject({
        details: expect.stringContaining('outside the dataset roots'),
      });
    } finally {
      client.close();
      await handle.stop('test over');
    }
  });

  it('keeps denormals with --no-flush-denormals or HM3_FLUSH_DENORMALS=0, and refuses another value', async () => {
    const argv = ['evaluator', '--port', '0', '--allow-unauthenticated', '--host=127.0.0.1'];
    const env = {
      HM3_METRICS_PORT: 'off',
      HM3_ARTIFACT_ROOT: path.join(dir, 'artifacts'),
      HM3_LOG_LEVEL: 'silent',
    };
    const flushes = async (flag: boolean | undefined, value: string | undefined): Promise<boolean> => {
      const handle = await startService(
        'evaluator',
        { modelsRoot: zooRoot, store: 'memory', ...(flag === undefined ? {} : { flushDenormals: flag }) },
        argv,
        value === undefined ? env : { ...env, HM3_FLUSH_DENORMALS: value },
      );
      try {
        return (handle.running as RunningEvaluator).core.runtime('cpu').flushDenormals;
      } finally {
        await handle.stop('test over');
      }
    };
    expect(await flushes(false, undefined)).toBe(false);
    expect(await flushes(undefined, '0')).toBe(false);
    expect(await flushes(undefined, 'false')).toBe(false);
    expect(await flushes(true, '0')).toBe(true); // the flag wins
    await expect(flushes(undefined, 'maybe')).rejects.toThrow(/HM3_FLUSH_DENORMALS: "maybe"/);
  });
});
