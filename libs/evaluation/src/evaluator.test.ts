import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loglikelihood, ModelRuntime } from '@hm3/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EmptyDatasetError,
  EvaluationCancelledError,
  InvalidDatasetError,
  InvalidTaskSpecError,
  UnknownMetricError,
} from './errors.js';
import { evaluateTask, loadTaskExamples, type EvaluationProgress } from './evaluator.js';
import { chrf } from './metrics.js';
import { zooTaskSpec, type Example, type TaskSpec } from './task-spec.js';
import { openZooModel, TEST_RUNTIME_OPTIONS, type ZooModelUnderTest } from './zoo.test-helper.js';

let runtime: ModelRuntime;
let base: ZooModelUnderTest;
let dir: string;
let math: Example[];

beforeAll(async () => {
  runtime = new ModelRuntime(TEST_RUNTIME_OPTIONS);
  base = await openZooModel(runtime, 'base');
  dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-evaluator-'));
  math = (await loadTaskExamples(zooTaskSpec('math', 'search'))).examples.slice(0, 40);
});
afterAll(async () => {
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
});

const spec = (over: Partial<TaskSpec> = {}): TaskSpec => ({ ...zooTaskSpec('math', 'search'), ...over });

describe('evaluateTask', () => {
  it('is deterministic: the same records whatever the batch size', async () => {
    const runs = await Promise.all(
      [1, 7, 64].map((batchSize) => evaluateTask({ ...base, task: spec(), examples: math, batchSize })),
    );
    const strip = (r: (typeof runs)[number]) => r.records.map(({ minTopGap: _g, ...rest }) => rest);
    expect(strip(runs[1]!)).toEqual(strip(runs[0]!));
    expect(strip(runs[2]!)).toEqual(strip(runs[0]!));
    runs[0]!.records.forEach((r, i) => expect(runs[2]!.records[i]!.minTopGap).toBeCloseTo(r.minTopGap!, 4));
    expect(runs[0]!.count).toBe(40);
    // Records keep what the model answers: the gold answer when right, its greedy answer when wrong.
    for (const r of runs[0]!.records) {
      expect(r.correct).toBe(r.predicted === r.expected);
      expect(r.score).toBe(r.correct ? 1 : 0);
    }
    expect(runs[0]!.records.some((r) => !r.correct) && runs[0]!.records.some((r) => r.correct)).toBe(true);
  }, 120_000);

  it('reports progress after every batch up to the total, and scores only `limit` examples', async () => {
    const seen: EvaluationProgress[] = [];
    const result = await evaluateTask({
      ...base,
      task: spec({ limit: 25 }),
      examples: math,
      batchSize: 10,
      onProgress: (p) => seen.push(p),
    });
    expect(result.count).toBe(25);
    expect(seen).toEqual([
      { done: 10, total: 25 },
      { done: 20, total: 25 },
      { done: 25, total: 25 },
    ]);
    expect(result.records.map((r) => r.prompt)).toEqual(math.slice(0, 25).map((e) => e.prompt));
  }, 60_000);

  it('stops at an aborted signal with a CANCELLED error', async () => {
    const controller = new AbortController();
    const run = evaluateTask({
      ...base,
      task: spec(),
      examples: math,
      batchSize: 5,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.done === 10) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(EvaluationCancelledError);
    await expect(run).rejects.toMatchObject({ status: 'CANCELLED', details: { done: 10, total: 40 } });
  }, 60_000);

  it('reads the split from the dataset reference and says which bytes it read', async () => {
    const result = await evaluateTask({ ...base, task: spec({ limit: 8 }) });
    expect(result.dataset?.source).toMatch(/zoo\/datasets\/math\/search\.jsonl$/);
    expect(result.dataset?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(result.records[0]!.line).toBe(1);
    expect(result.split).toBe('search');
  }, 60_000);

  it('chrf scores the greedy continuation against the answer', async () => {
    const em = await evaluateTask({ ...base, task: spec(), examples: math });
    const c = await evaluateTask({ ...base, task: spec({ metric: 'chrf' }), examples: math });
    expect(c.metric).toBe('chrf');
    c.records.forEach((r, i) => {
      expect(r.predicted).toBe(em.records[i]!.predicted);
      expect(r.score).toBeCloseTo(chrf(r.predicted!, r.expected), 12);
    });
    expect(c.score).toBeGreaterThanOrEqual(em.score);
    expect(c.score).toBeLessThan(1);
  }, 60_000);

  it('loglikelihood_accuracy picks the choice the model finds most likely', async () => {
    const expert = await openZooModel(runtime, 'expert-math');
    // Each math prompt against its answer with the last digit changed.
    const mc: Example[] = math.map((ex, i) => {
      const wrong = ex.answer.slice(0, -1) + String((Number(ex.answer.at(-1)) + 1 + (i % 9)) % 10);
      return {
        prompt: ex.prompt,
        answer: ex.answer,
        choices: i % 2 ? [ex.answer, wrong] : [wrong, ex.answer],
      };
    });
    const task = spec({ metric: 'loglikelihood_accuracy' });
    const result = await evaluateTask({ ...expert, task, examples: mc, batchSize: 16 });
    const baseResult = await evaluateTask({ ...base, task, examples: mc, batchSize: 16 });
    // The math expert (0.925 exact match) ranks the right answer first far more often than the base.
    expect(result.score).toBeGreaterThanOrEqual(0.9);
    expect(result.score).toBeGreaterThan(baseResult.score);
    const first = result.records[0]!;
    const context = expert.tokenizer.encode(mc[0]!.prompt);
    const direct = await loglikelihood(
      expert.model,
      mc[0]!.choices!.map((c) => ({
        context,
        continuation: expert.tokenizer.encode(c, { addSpecialTokens: false }),
      })),
    );
    expect(first.choiceLogprobs).toEqual(direct.map((d) => d.logprob));
    expect(first.predicted).toBe(mc[0]!.choices![direct[0]!.logprob >= direct[1]!.logprob ? 0 : 1]);
  }, 120_000);
});

describe('bad input is a typed INVALID_ARGUMENT error', () => {
  it('an empty dataset', async () => {
    await expect(evaluateTask({ ...base, task: spec(), examples: [] })).rejects.toThrow(EmptyDatasetError);
    await writeFile(path.join(dir, 'empty.jsonl'), '\n');
    const run = evaluateTask({
      ...base,
      task: spec({ dataset: { uri: path.join(dir, 'empty.jsonl') }, split: 'full' }),
    });
    await expect(run).rejects.toThrow(EmptyDatasetError);
    await expect(run).rejects.toMatchObject({ status: 'INVALID_ARGUMENT' });
  });

  it('a malformed JSONL line, with its line number', async () => {
    const file = path.join(dir, 'bad.jsonl');
    await writeFile(file, '{"prompt":"12+34=","answer":"640"}\n{"prompt":"1\n');
    const run = evaluateTask({ ...base, task: spec({ dataset: { uri: file }, split: 'full' }) });
    await expect(run).rejects.toThrow(InvalidDatasetError);
    await expect(run).rejects.toMatchObject({ status: 'INVALID_ARGUMENT', details: { line: 2 } });
  });

  it('a template without the prompt field', async () => {
    await expect(evaluateTask({ ...base, task: spec({ promptTemplate: 'sum:' }) })).rejects.toThrow(
      InvalidTaskSpecError,
    );
    const file = path.join(dir, 'other.jsonl');
    await writeFile(file, '{"question":"12+34=","answer":"640"}\n');
    await expect(
      evaluateTask({ ...base, task: spec({ dataset: { uri: file }, split: 'full' }) }),
    ).rejects.toMatchObject({ status: 'INVALID_ARGUMENT', details: { line: 1, field: 'prompt' } });
  });

  it('an unknown metric', async () => {
    const task = { ...spec(), metric: 'bleu' } as unknown as TaskSpec;
    await expect(evaluateTask({ ...base, task, examples: math })).rejects.toThrow(UnknownMetricError);
  });
});
