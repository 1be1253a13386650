import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { ParetoArchive } from './archive.js';
import { compareDominance } from './dominance.js';
import { nonDominatedIndices } from './non-dominated-sort.js';
import { pointSets } from './test-arbitraries.test-helper.js';

describe('ParetoArchive', () => {
  it('keeps the non-dominated set incrementally', () => {
    const archive = new ParetoArchive<string>();
    expect(archive.add([1, 1], 'a').accepted).toBe(true);
    expect(archive.add([2, 0], 'b').accepted).toBe(true);
    expect(archive.add([0, 0], 'c').accepted).toBe(false);
    expect(archive.add([1, 1], 'duplicate').accepted).toBe(false);
    const result = archive.add([2, 2], 'd');
    expect(result.accepted).toBe(true);
    expect(result.removed.map((e) => e.item).sort()).toEqual(['a', 'b']);
    expect(archive.entries().map((e) => e.item)).toEqual(['d']);
  });

  it('respects directions', () => {
    const archive = new ParetoArchive({ directions: ['min', 'max'] });
    archive.add([1, 1], undefined);
    expect(archive.add([0, 2], undefined).removed).toHaveLength(1);
    expect(archive.wouldAccept([0.5, 1.5])).toBe(false);
  });

  it('rejects NaN objectives with the objective index', () => {
    const archive = new ParetoArchive();
    expect(() => archive.add([Number.NaN, 1], undefined)).toThrow(InvalidArgumentError);
    archive.add([1, 2], undefined);
    expect(() => archive.add([1, 2, 3], undefined)).toThrow(/expected 2/);
  });

  it('rejects every dominated point and always equals the non-dominated set of what was added', () => {
    fc.assert(
      fc.property(pointSets({ minPoints: 1 }), (points) => {
        const archive = new ParetoArchive<number>();
        points.forEach((p, i) => {
          const dominatedByMember = archive.entries().some((e) => compareDominance(e.objectives, p) === 1);
          const result = archive.add(p, i);
          if (dominatedByMember) expect(result.accepted).toBe(false);
          const members = archive.objectives();
          for (const a of members) for (const b of members) expect(compareDominance(a, b)).toBe(0);
        });
        const expected = new Set(nonDominatedIndices(points).map((i) => points[i]!.join(',')));
        expect(new Set(archive.objectives().map((p) => p.join(',')))).toEqual(expected);
        expect(archive.size).toBe(expected.size);
      }),
      { numRuns: 200 },
    );
  });
});
