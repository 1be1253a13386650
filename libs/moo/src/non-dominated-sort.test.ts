import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { compareDominance } from './dominance.js';
import { nonDominatedIndices, nonDominatedSort } from './non-dominated-sort.js';
import { pointSets } from './test-arbitraries.test-helper.js';

describe('nonDominatedSort', () => {
  it('ranks a small example into layers', () => {
    const points = [
      [1, 1],
      [3, 1],
      [2, 2],
      [1, 3],
      [2, 2],
      [0, 0],
    ];
    expect(nonDominatedSort(points)).toEqual([[1, 2, 3, 4], [0], [5]]);
    expect(nonDominatedSort(points, { directions: ['min', 'min'] })).toEqual([[5], [0], [1, 2, 3, 4]]);
    expect(nonDominatedIndices(points)).toEqual([1, 2, 3, 4]);
  });

  it('handles the empty set', () => {
    expect(nonDominatedSort([])).toEqual([]);
  });

  it('rejects NaN objectives with the point index', () => {
    try {
      nonDominatedSort([
        [1, 2],
        [3, 4],
        [5, Number.NaN],
      ]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details).toMatchObject({ index: 2, objective: 1 });
    }
  });

  it('its layers partition the set, each layer non-dominated and dominated only by earlier layers', () => {
    fc.assert(
      fc.property(pointSets(), (points) => {
        const fronts = nonDominatedSort(points);
        const all = fronts.flat().sort((a, b) => a - b);
        expect(all).toEqual(points.map((_, i) => i));
        fronts.forEach((front, k) => {
          for (const i of front) {
            for (const j of front) expect(compareDominance(points[i]!, points[j]!)).toBe(0);
            if (k > 0)
              expect(fronts[k - 1]!.some((j) => compareDominance(points[j]!, points[i]!) === 1)).toBe(true);
          }
        });
      }),
      { numRuns: 200 },
    );
  });
});
