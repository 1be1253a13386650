import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { compareDominance, dominates } from './dominance.js';

describe('dominance', () => {
  it('maximises by default', () => {
    expect(dominates([2, 2], [1, 2])).toBe(true);
    expect(dominates([1, 2], [2, 2])).toBe(false);
    expect(dominates([1, 1], [1, 1])).toBe(false);
    expect(compareDominance([1, 3], [2, 2])).toBe(0);
  });

  it('follows per-objective directions', () => {
    expect(dominates([2, 1], [1, 2], ['max', 'min'])).toBe(true);
    expect(dominates([2, 1], [1, 2], ['min', 'min'])).toBe(false);
    expect(compareDominance([1, 2], [2, 1], ['max', 'min'])).toBe(-1);
  });

  it('rejects a NaN objective with its index', () => {
    expect(() => dominates([1, Number.NaN], [1, 2])).toThrow(InvalidArgumentError);
    try {
      dominates([1, 2], [1, Number.NaN]);
      expect.unreachable();
    } catch (error) {
      expect((error as InvalidArgumentError).details).toMatchObject({ field: 'b', objective: 1 });
    }
  });

  it('rejects vectors of different lengths and bad directions', () => {
    expect(() => dominates([1, 2], [1, 2, 3])).toThrow(/expected 2/);
    expect(() => dominates([1, 2], [1, 2], ['max'])).toThrow(/directions/);
  });
});
