/**
 * Teacher-forced exact match equals real greedy decoding: on every zoo task and model (search split),
 * an example is right by the one-pass verdict exactly when greedy decoding with the KV cache produces
 * the answer followed by the end token.
 */
import { generateGreedy, ModelRuntime } from '@hm3/model';
import { ZOO_MODELS, ZOO_TASKS } from '@hm3/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateTask, findEosTokenId, GENERATION_SLACK, loadTaskExamples } from './evaluator.js';
import { zooTaskSpec } from './task-spec.js';
import { openZooModel, TEST_RUNTIME_OPTIONS } from './zoo.test-helper.js';

let runtime: ModelRuntime;
beforeAll(() => {
  runtime = new ModelRuntime(TEST_RUNTIME_OPTIONS);
});
afterAll(async () => {
  await runtime.close();
});

describe('teacher-forced exact match equals greedy decoding', () => {
  for (const name of ZOO_MODELS) {
    it(`${name}: on every task, the one-pass verdict of every example is greedy decoding's`, async () => {
      const { model, tokenizer } = await openZooModel(runtime, name);
      const eos = findEosTokenId(tokenizer);
      for (const task of ZOO_TASKS) {
        const spec = zooTaskSpec(task, 'search');
        const { examples } = await loadTaskExamples(spec);
        const result = await evaluateTask({ model, tokenizer, task: spec, predictions: false });
        const prompts = examples.map((ex) => tokenizer.encode(ex.prompt, { addSpecialTokens: true }));
        const maxNewTokens =
          Math.max(...examples.map((ex) => tokenizer.encode(ex.answer, { addSpecialTokens: false }).length)) +
          GENERATION_SLACK;
        // Real greedy decoding, one batch per prompt length (no padding), every example.
        const generated = new Array<number[]>(examples.length);
        const byLength = new Map<number, number[]>();
        prompts.forEach((p, i) => byLength.set(p.length, [...(byLength.get(p.length) ?? []), i]));
        for (const group of byLength.values()) {
          const out = await generateGreedy(
            model,
            group.map((i) => prompts[i]!),
            { maxNewTokens, eosTokenIds: [eos] },
          );
          group.forEach((i, k) => (generated[i] = out[k]!));
        }
        let right = 0;
        examples.forEach((ex, i) => {
          const gold = [...tokenizer.encode(ex.answer, { addSpecialTokens: false }), eos];
          const greedyRight =
            generated[i]!.length === gold.length && generated[i]!.every((t, j) => t === gold[j]);
          expect(result.records[i]!.correct, `${name}/${task}#${i} ${ex.prompt}`).toBe(greedyRight);
          if (greedyRight) right++;
        });
        expect(result.score).toBe(right / examples.length);
      }
    }, 600_000);
  }
});
