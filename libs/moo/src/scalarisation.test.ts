import { describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { augmentedTchebycheff, pbi, scalariser, tchebycheff, weightedSum } from './scalarisation.js';

describe('scalarisations (costs: lower is better)', () => {
  it('weighted sum negates maximised objectives', () => {
    expect(weightedSum([0.8, 0.4], [0.5, 0.5])).toBeCloseTo(-0.6, 12);
    expect(weightedSum([0.8, 0.4], [0.5, 0.5], ['min', 'min'])).toBeCloseTo(0.6, 12);
  });

  it('Tchebycheff measures the weighted distance to the ideal point', () => {
    // HM3: g = max_k w_k |z*_k - F_k|
    expect(tchebycheff([0.8, 0.4], [0.5, 0.5], [1, 1])).toBeCloseTo(0.3, 12);
    expect(tchebycheff([0.8, 0.4], [0.9, 0.1], [1, 1])).toBeCloseTo(0.18, 12);
    expect(augmentedTchebycheff([0.8, 0.4], [0.5, 0.5], [1, 1], 0.1)).toBeCloseTo(0.3 + 0.1 * 0.4, 12);
  });

  it('PBI is d1 + theta d2 along the weight direction', () => {
    // on the ray: d2 = 0, d1 = distance from the ideal
    expect(pbi([1, 1], [0.5, 0.5], [0, 0], 5, ['min', 'min'])).toBeCloseTo(Math.SQRT2, 12);
    // off the ray: f = (1, 0), w = (0.5, 0.5): d1 = 1/sqrt(2), d2 = 1/sqrt(2)
    expect(pbi([1, 0], [0.5, 0.5], [0, 0], 5, ['min', 'min'])).toBeCloseTo(6 / Math.SQRT2, 12);
  });

  it('checks its inputs: weights normalised with a warning, negative weights and NaN objectives rejected', () => {
    const onWarning = vi.fn();
    const g = scalariser({ kind: 'tchebycheff' }, { weights: [1, 1], ideal: [1, 1], onWarning });
    expect(onWarning).toHaveBeenCalledOnce();
    expect(g([0.8, 0.4])).toBeCloseTo(0.3, 12);
    expect(() => g([0.8, Number.NaN])).toThrow(InvalidArgumentError);
    expect(() => tchebycheff([1, 1], [-0.5, 1.5], [1, 1])).toThrow(/negative/);
    expect(() => scalariser({ kind: 'pbi' }, { weights: [0.5, 0.5] })).toThrow(/ideal/);
  });
});
