import { parseSearchSpecYaml } from '@hm3/search';
import { describe, expect, it } from 'vitest';
import { benchSpec, DEFAULT_STRATEGIES } from './search-bench.js';

describe('search bench', () => {
  it('writes a valid spec for every default strategy, at the same budget', () => {
    for (const strategy of DEFAULT_STRATEGIES) {
      const spec = parseSearchSpecYaml(benchSpec(strategy, 2, 300, 64), 'bench');
      expect(spec.strategy).toBe(strategy);
      expect(spec.budget.maxEvaluations).toBe(300);
      expect(spec.seed).toBe(2);
      expect(spec.objectives.map((o) => [o.name, o.dataset.uri, o.maxExamples])).toEqual([
        ['translate', 'zoo:translate', 64],
        ['math', 'zoo:math', 64],
        ['code', 'zoo:code', 64],
      ]);
    }
    const variant = parseSearchSpecYaml(benchSpec('hm3+nsga2', 1, 300, 64), 'bench');
    expect([variant.strategy, variant.upper.optimizer]).toEqual(['hm3', 'nsga2']);
    expect(DEFAULT_STRATEGIES).toEqual(expect.arrayContaining(['hm3', 'param-only', 'arch-only']));
  });
});
