import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from './prng.js';
import { latinHypercube, NSGA2_MUTATION, NSGA2_SBX, polynomialMutation, sbx } from './variation.js';

const box = { lower: [0, -1, 2], upper: [1, 1, 2] };

describe('variation operators', () => {
  it('a Latin hypercube puts exactly one point in every stratum of every variable', () => {
    const rng = new Rng(3);
    const n = 17;
    const points = latinHypercube(n, { lower: [0, -5], upper: [1, 5] }, rng);
    expect(points).toHaveLength(n);
    for (const [i, [lo, hi]] of [[0, [0, 1]] as const, [1, [-5, 5]] as const]) {
      const strata = points.map((p) => Math.floor(((p[i]! - lo) / (hi - lo)) * n)).sort((a, b) => a - b);
      expect(strata).toEqual(Array.from({ length: n }, (_, k) => k));
    }
  });

  it('SBX and polynomial mutation keep children in the box and leave fixed variables alone', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const rng = new Rng(seed);
        const p1 = [rng.next(), rng.uniform(-1, 1), 2];
        const p2 = [rng.next(), rng.uniform(-1, 1), 2];
        for (const child of sbx(p1, p2, box, NSGA2_SBX, rng)) {
          polynomialMutation(child, box, { ...NSGA2_MUTATION, probability: 1, variableProbability: 1 }, rng);
          child.forEach((v, i) => {
            expect(v).toBeGreaterThanOrEqual(box.lower[i]!);
            expect(v).toBeLessThanOrEqual(box.upper[i]!);
          });
          expect(child[2]).toBe(2);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('SBX without crossover copies the parents; the children spread around the parents', () => {
    const rng = new Rng(1);
    expect(sbx([0.1, 0.2, 2], [0.3, 0.4, 2], box, { ...NSGA2_SBX, probability: 0 }, rng)).toEqual([
      [0.1, 0.2, 2],
      [0.3, 0.4, 2],
    ]);
    let sum = 0;
    for (let i = 0; i < 2000; i++) {
      const [a, b] = sbx(
        [0.4, 0, 2],
        [0.6, 0, 2],
        box,
        { ...NSGA2_SBX, probability: 1, variableProbability: 1 },
        rng,
      );
      sum += a[0]! + b[0]!;
    }
    // SBX preserves the parents' mean (up to the bounded spread)
    expect(sum / 4000).toBeCloseTo(0.5, 2);
  });
});
