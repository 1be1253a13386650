import { describe, expect, it } from 'vitest';
import { InvalidDatasetError, InvalidTaskSpecError, UnknownMetricError } from './errors.js';
import {
  parseTaskSpec,
  renderPrompt,
  templateFields,
  toExamples,
  zooTaskSpec,
  type TaskSpec,
} from './task-spec.js';

const base = {
  name: 't',
  dataset: { uri: 'd.jsonl' },
  promptTemplate: 'Q: {question}\nA:',
  metric: 'exact_match',
};

describe('task specs', () => {
  it('accepts a valid spec and keeps its fields', () => {
    expect(parseTaskSpec({ ...base, limit: 5, seed: 2, split: 'search' })).toMatchObject({
      metric: 'exact_match',
      limit: 5,
      seed: 2,
    });
  });

  it('refuses a template that reads no field of the example', () => {
    const error = (() => {
      try {
        parseTaskSpec({ ...base, promptTemplate: 'Translate:' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidTaskSpecError);
    expect((error as InvalidTaskSpecError).field).toBe('promptTemplate');
    expect((error as InvalidTaskSpecError).status).toBe('INVALID_ARGUMENT');
  });

  it('refuses an unknown metric, naming the known ones', () => {
    expect(() => parseTaskSpec({ ...base, metric: 'bleu' })).toThrow(UnknownMetricError);
    expect(() => parseTaskSpec({ ...base, metric: 'bleu' })).toThrow(
      /exact_match, chrf, loglikelihood_accuracy/,
    );
  });

  it('names the field of a malformed spec', () => {
    expect(() => parseTaskSpec({ ...base, limit: -1 })).toThrow(/task spec limit:/);
    expect(() => parseTaskSpec({ ...base, dataset: {} })).toThrow(/task spec dataset\.uri:/);
    expect(() => parseTaskSpec({ ...base, promptTemplate: 'a {b' })).toThrow(/unbalanced/);
  });

  it('templates fill fields, keep doubled braces literal', () => {
    expect(templateFields('{{x}} {a} {b}')).toEqual(['a', 'b']);
    expect(renderPrompt('{{{a}}}={b}', { line: 1, fields: { a: 'x', b: 3 } }, 'f')).toBe('{x}=3');
  });

  it('a line without the field the template reads is an error with its line number', () => {
    const spec = parseTaskSpec(base);
    expect(() => toExamples(spec, [{ line: 4, fields: { prompt: 'p', answer: 'a' } }], 'data.jsonl')).toThrow(
      /data\.jsonl:4: the prompt template reads field "question"/,
    );
    expect(() => toExamples(spec, [{ line: 2, fields: { question: 'q' } }], 'data.jsonl')).toThrow(
      InvalidDatasetError,
    );
  });

  it('multiple-choice lines give choices and the answer by text or index', () => {
    const spec: TaskSpec = { ...parseTaskSpec(base), metric: 'loglikelihood_accuracy' };
    const [byIndex, byText] = toExamples(
      spec,
      [
        { line: 1, fields: { question: 'q1', choices: ['a', 'b'], answer: 1 } },
        { line: 2, fields: { question: 'q2', choices: ['a', 'b'], answer: 'a' } },
      ],
      'mc.jsonl',
    );
    expect(byIndex).toMatchObject({ answer: 'b', choices: ['a', 'b'], line: 1 });
    expect(byText).toMatchObject({ answer: 'a' });
    expect(() =>
      toExamples(
        spec,
        [{ line: 3, fields: { question: 'q', choices: ['a', 'b'], answer: 'c' } }],
        'mc.jsonl',
      ),
    ).toThrow(/mc\.jsonl:3:/);
    expect(() =>
      toExamples(spec, [{ line: 5, fields: { question: 'q', choices: ['a'], answer: 0 } }], 'mc.jsonl'),
    ).toThrow(/mc\.jsonl:5: field "choices"/);
  });

  it('zoo specs read the committed split files with exact match', () => {
    const spec = zooTaskSpec('math', 'heldout');
    expect(spec).toMatchObject({
      name: 'math',
      split: 'heldout',
      metric: 'exact_match',
      promptTemplate: '{prompt}',
    });
    expect(spec.dataset.uri).toMatch(/tools\/fixtures\/zoo\/datasets\/math$/);
    expect(parseTaskSpec(spec)).toEqual(spec);
  });
});
