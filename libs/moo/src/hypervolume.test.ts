import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { hypervolume, hypervolumeMonteCarlo, hypervolumeWfg } from './hypervolume.js';
import type { Direction } from './objectives.js';
import { pointSets } from './test-arbitraries.test-helper.js';

const mins = (d: number): Direction[] => new Array<Direction>(d).fill('min');
const ref = (d: number, v = 1.1): number[] => new Array<number>(d).fill(v);

describe('hypervolume', () => {
  it('measures a 2-D staircase exactly', () => {
    const points = [
      [0, 2],
      [1, 1],
      [2, 0],
    ];
    // union of [0,3]x[2,3], [1,3]x[1,3], [2,3]x[0,3] = 3 + 4 + 3 - overlaps = 6
    expect(hypervolume(points, { reference: [3, 3], directions: mins(2) })).toBeCloseTo(6, 12);
    // maximisation: the same picture mirrored
    expect(
      hypervolume(
        points.map((p) => p.map((v) => -v)),
        { reference: [-3, -3] },
      ),
    ).toBeCloseTo(6, 12);
  });

  it('measures a 3-D set exactly', () => {
    const points = [
      [0, 0, 1],
      [0, 1, 0],
      [1, 0, 0],
    ];
    // three 2x2x1 slabs (4 each), pairwise overlapping in 2x1x1 (2 each), all three in 1x1x1
    expect(hypervolume(points, { reference: [2, 2, 2], directions: mins(3) })).toBeCloseTo(12 - 6 + 1, 12);
    expect(hypervolume([[0, 0, 0]], { reference: [2, 2, 2], directions: mins(3) })).toBe(8);
  });

  it('is 0 for an empty front, and ignores points not better than the reference', () => {
    expect(hypervolume([])).toBe(0);
    expect(hypervolume([], { reference: [0, 0] })).toBe(0);
    expect(hypervolume([[2, 2]], { reference: [1, 1], directions: mins(2) })).toBe(0);
    expect(hypervolume([[1, 0.5]], { reference: [1, 1], directions: mins(2) })).toBe(0);
    expect(hypervolumeMonteCarlo([], { reference: [0, 0, 0] }).estimate).toBe(0);
  });

  it('normalises by ideal and nadir with the reference at 1.1 by default', () => {
    const front = [
      [10, 0],
      [0, 10],
    ];
    // normalised: (0,1) and (1,0); reference (1.1,1.1): 1.1*0.1*2 + 0.1*0.1... = 2 * 1.1 * 0.1 - 0.01
    expect(hypervolume(front)).toBeCloseTo(2 * 1.1 * 0.1 - 0.01, 12);
    expect(
      hypervolume(front, { bounds: { ideal: [10, 10], nadir: [0, 0] }, referenceAfterNormalisation: 2 }),
    ).toBeCloseTo(3, 12);
    expect(hypervolume([[5, 5]])).toBeCloseTo(1.21, 12);
    expect(() => hypervolume(front, { reference: [0, 0], bounds: { ideal: [1, 1], nadir: [0, 0] } })).toThrow(
      /not both/,
    );
    expect(() => hypervolume(front, { bounds: { ideal: [0, 0], nadir: [1, 1] } })).toThrow(
      /worse than nadir/,
    );
  });

  it('rejects NaN objectives with the point index', () => {
    try {
      hypervolume(
        [
          [1, 2],
          [Number.NaN, 1],
        ],
        { reference: [0, 0] },
      );
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details).toMatchObject({ index: 1, objective: 0 });
    }
  });

  it('of the 2-D and 3-D sweeps equals WFG on the same front; 4-D and 5-D WFG matches the slow path', () => {
    for (const d of [2, 3, 4, 5]) {
      fc.assert(
        fc.property(pointSets({ dimension: d, maxPoints: d >= 4 ? 14 : 40, grid: d % 2 === 0 }), (points) => {
          const options = { reference: ref(d), directions: mins(d) };
          const fast = hypervolume(points, options);
          const wfg = hypervolumeWfg(points, options);
          expect(Math.abs(fast - wfg)).toBeLessThanOrEqual(1e-12 * Math.max(1, wfg));
        }),
        { numRuns: 80, seed: 7 + d },
      );
    }
  });

  it('is monotone under adding points', () => {
    fc.assert(
      fc.property(pointSets({ minPoints: 1, maxPoints: 20 }), fc.nat(), (points, at) => {
        const d = points[0]!.length;
        const options = { reference: ref(d), directions: mins(d) };
        const fewer = points.filter((_, i) => i !== at % points.length);
        expect(hypervolume(points, options)).toBeGreaterThanOrEqual(hypervolume(fewer, options) - 1e-12);
      }),
      { numRuns: 200 },
    );
  });

  it('exact equals the Monte-Carlo estimate within its confidence interval', () => {
    fc.assert(
      fc.property(pointSets({ minPoints: 1, maxPoints: 12, grid: false }), fc.nat(1000), (points, seed) => {
        const d = points[0]!.length;
        const options = { reference: ref(d), directions: mins(d) };
        const exact = hypervolume(points, options);
        const mc = hypervolumeMonteCarlo(points, { ...options, seed, samples: 20_000, confidence: 0.999 });
        expect(exact).toBeGreaterThanOrEqual(mc.lower - 1e-12);
        expect(exact).toBeLessThanOrEqual(mc.upper + 1e-12);
      }),
      { numRuns: 40, seed: 2026 },
    );
  });

  it('gives the same Monte-Carlo estimate for the same seed', () => {
    const points = [
      [0.2, 0.7, 0.1],
      [0.5, 0.1, 0.6],
    ];
    const a = hypervolumeMonteCarlo(points, {
      reference: ref(3),
      directions: mins(3),
      seed: 3,
      samples: 5000,
    });
    const b = hypervolumeMonteCarlo(points, {
      reference: ref(3),
      directions: mins(3),
      seed: 3,
      samples: 5000,
    });
    expect(a).toEqual(b);
    expect(a.lower).toBeLessThan(a.estimate);
    expect(a.upper).toBeGreaterThan(a.estimate);
  });
});
