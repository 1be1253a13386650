import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadAnswers, loadDataset, loadManifest, modelPath } from '@hm3/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEvalCommand, type EvalCommandOptions } from './eval.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-eval-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(target: string | undefined, options: EvalCommandOptions) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runEvalCommand(
    target,
    { threads: '1', ...options },
    {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      tty: false,
    },
  );
  return { code, out, err };
}

describe('hm3 eval', () => {
  it('scores a zoo model folder on a zoo task, with progress lines and per-example records', async () => {
    const records = path.join(dir, 'records.jsonl');
    const { code, out, err } = await run(modelPath('base'), {
      task: 'zoo:math',
      split: 'heldout',
      limit: '30',
      records,
    });
    expect(code, err.join('\n')).toBe(0);
    const recorded = (await loadAnswers(await loadManifest())).answers['base']!.math.heldout.slice(0, 30);
    const gold = (await loadDataset('math', 'heldout')).slice(0, 30);
    const expected = recorded.filter((a, i) => a === gold[i]!.answer).length / 30;
    expect(out[0]).toMatch(
      new RegExp(`^math \\(heldout\\): exact_match ${expected.toFixed(6)} on 30 examples`),
    );
    expect(err.at(-1)).toBe('eval math: 30/30 examples');
    const lines = (await readFile(records, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { predicted: string });
    expect(lines.map((l) => l.predicted)).toEqual(recorded);
  });

  it('scores an inference path JSON and a task spec file (paths relative to the files), as JSON', async () => {
    await writeFile(
      path.join(dir, 'data.jsonl'),
      await readFile(path.join(modelPath('base'), '../datasets/code/search.jsonl'), 'utf8'),
    );
    await writeFile(
      path.join(dir, 'task.json'),
      JSON.stringify({
        name: 'code-chrf',
        dataset: { uri: 'data.jsonl' },
        split: 'full',
        promptTemplate: '{prompt}',
        metric: 'chrf',
        limit: 16,
      }),
    );
    await writeFile(
      path.join(dir, 'path.json'),
      JSON.stringify({
        pool: ['zoo:base', 'zoo:expert-code'],
        steps: [0, 1, 2, 3, 4, 5, 6, 7].map((l) => ({ poolIndex: l < 2 ? 0 : 1, layerIndex: l })),
        headSource: 1,
      }),
    );
    const { code, out, err } = await run(path.join(dir, 'path.json'), {
      task: path.join(dir, 'task.json'),
      json: true,
      progress: false,
    });
    expect(code, err.join('\n')).toBe(0);
    expect(err).toEqual([]);
    const result = JSON.parse(out[0]!) as {
      task: string;
      metric: string;
      count: number;
      score: number;
      split: string;
    };
    expect(result).toMatchObject({ task: 'code-chrf', metric: 'chrf', count: 16, split: 'full' });
    expect(result.score).toBeGreaterThan(0);
    expect(result.score).toBeLessThanOrEqual(1);
  });

  it('exits 2 on bad input, naming it', async () => {
    await writeFile(
      path.join(dir, 'bad-metric.json'),
      JSON.stringify({
        name: 'x',
        dataset: { uri: 'data.jsonl' },
        promptTemplate: '{prompt}',
        metric: 'bleu',
      }),
    );
    const cases: [string | undefined, EvalCommandOptions, RegExp][] = [
      [modelPath('base'), { task: 'zoo:poetry' }, /names no zoo task/],
      [modelPath('base'), { task: 'math', split: 'dev' }, /splits train, search, heldout/],
      [modelPath('base'), { task: path.join(dir, 'bad-metric.json') }, /unknown metric "bleu"/],
      [modelPath('base'), { task: path.join(dir, 'missing.json') }, /task spec/],
      [path.join(dir, 'no-model'), { task: 'math' }, /no-model/],
      [modelPath('base'), { task: 'math', limit: '0' }, /limit/],
      [undefined, { task: 'math' }, /usage/],
    ];
    for (const [target, options, message] of cases) {
      const { code, err } = await run(target, options);
      expect(code, `${JSON.stringify(options)}: ${err.join('\n')}`).toBe(2);
      expect(err.join('\n')).toMatch(message);
    }
  });
});
