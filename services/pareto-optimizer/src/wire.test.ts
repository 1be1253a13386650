import { parseSearchSpecYaml } from '@hm3/search';
import { describe, expect, it } from 'vitest';
import { specFromWire, specToWire } from './wire.js';

const yaml = (extra: string) =>
  [
    'name: wire',
    'base: base',
    'experts: [expert-translate, expert-math, { uri: expert-code, model_id: code-v1 }]',
    'objectives:',
    '  - { name: translate, dataset: "zoo:translate", max_examples: 8, split_seed: 3 }',
    '  - { name: math, dataset: { uri: "zoo:math", sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }, metric: exact_match, search_fraction: 0.5 }',
    '  - { name: code, dataset: "zoo:code" }',
    'preference_count: 3',
    extra,
    'seed: 42',
    '',
  ].join('\n');

describe('the search spec on the wire', () => {
  it('round-trips every field the proto carries', () => {
    for (const extra of [
      'budget: { max_evaluations: 60 }',
      'budget: { max_rounds: 4, max_seconds: 100 }\nstrategy: hm3-amortized\nscalarization: weighted-sum',
      'budget: { max_evaluations: 9 }\nstrategy: param-only\npreference_sampling: das-dennis\nupper: { method: ties, parameters: { density: 0.3, lambda: 0.8 }, optimizer: nsga2, population: 6, dtype: float64, out_dtype: bfloat16 }',
      'budget: { max_evaluations: 9 }\nstrategy: arch-only\nt_max: 6\nrl: { episodes_per_iteration: 2, learning_rate: 0.001, reward_scalarization: tchebycheff, hidden_size: 32 }',
    ]) {
      const spec = parseSearchSpecYaml(yaml(extra));
      expect(specFromWire(specToWire(spec))).toEqual(spec);
    }
  });

  it('refuses a wire spec with the field path of the problem', () => {
    const wire = specToWire(parseSearchSpecYaml(yaml('budget: { max_evaluations: 5 }')));
    wire.experts = wire.experts.slice(0, 1);
    expect(() => specFromWire(wire)).toThrow(/experts/);
    const noBudget = specToWire(parseSearchSpecYaml(yaml('budget: { max_evaluations: 5 }')));
    noBudget.budget = { maxEvaluations: 0, maxRounds: 0, maxSeconds: 0, evaluationTimeoutSeconds: 0 };
    expect(() => specFromWire(noBudget)).toThrow(/budget/);
  });
});
