import { describe, expect, it } from 'vitest';
import { InvalidTaskSpecError, UnknownMetricError } from './errors.js';
import { BUILTIN_TASKS, objectiveTaskSpec } from './task-catalog.js';

describe('the task catalog', () => {
  it('lists completion, multiple-choice and the zoo tasks, sorted, each with its default metric', () => {
    expect(BUILTIN_TASKS.map((t) => t.name)).toEqual([
      'code',
      'completion',
      'math',
      'multiple-choice',
      'translate',
    ]);
    for (const t of BUILTIN_TASKS) expect(t.metrics).toContain(t.defaultMetric);
  });

  it('turns an objective into a task spec on a split', () => {
    const spec = objectiveTaskSpec(
      {
        name: 'qa',
        task: 'completion',
        dataset: { uri: '/d/qa.jsonl' },
        maxExamples: 50,
        splitSeed: 9,
        searchFraction: 0.5,
      },
      'search',
    );
    expect(spec).toEqual({
      name: 'qa',
      dataset: { uri: '/d/qa.jsonl' },
      split: 'search',
      promptTemplate: '{prompt}',
      metric: 'exact_match',
      limit: 50,
      seed: 9,
      searchFraction: 0.5,
    });
    expect(objectiveTaskSpec({ name: 'm', task: 'math' }, 'heldout').dataset.uri).toMatch(
      /zoo\/datasets\/math$/,
    );
    expect(objectiveTaskSpec({ name: 'm', task: 'math', metric: 'chrf' }, 'heldout').metric).toBe('chrf');
    // `zoo:<task>` datasets, an empty task (completion), a metric named as the task.
    const zoo = objectiveTaskSpec({ name: 'z', task: '', dataset: { uri: 'zoo:code' } }, 'search');
    expect(zoo).toMatchObject({ metric: 'exact_match', split: 'search' });
    expect(zoo.dataset.uri).toMatch(/zoo\/datasets\/code$/);
    expect(
      objectiveTaskSpec({ name: 'z', task: 'chrf', dataset: { uri: 'zoo:code' } }, 'search').metric,
    ).toBe('chrf');
    expect(() =>
      objectiveTaskSpec({ name: 'z', task: '', dataset: { uri: 'zoo:poetry' } }, 'search'),
    ).toThrow(/names no zoo task/);
  });

  it('refuses an unknown task, an unknown metric, a metric the task does not compute, a missing dataset', () => {
    expect(() => objectiveTaskSpec({ name: 'x', task: 'nope' }, 'search')).toThrow(/unknown task "nope"/);
    expect(() => objectiveTaskSpec({ name: 'x', task: 'math', metric: 'bleu' }, 'search')).toThrow(
      UnknownMetricError,
    );
    expect(() =>
      objectiveTaskSpec({ name: 'x', task: 'math', metric: 'loglikelihood_accuracy' }, 'search'),
    ).toThrow(InvalidTaskSpecError);
    expect(() => objectiveTaskSpec({ name: 'x', task: 'completion' }, 'search')).toThrow(/needs a dataset/);
  });
});
