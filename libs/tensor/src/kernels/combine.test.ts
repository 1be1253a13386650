import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { axpy } from './axpy.js';
import { maskedDisjointMean } from './masked-disjoint-mean.js';
import { absSum, applyMask, dot } from './reductions.js';
import { signVote } from './sign-vote.js';
import { weightedSum } from './weighted-sum.js';

const vec = (n: number) =>
  fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: n, maxLength: n });

describe('combining kernels', () => {
  it('axpy and weightedSum match a plain loop, any split', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }).chain((n) => fc.tuple(vec(n), vec(n), vec(n), fc.nat({ max: n }))),
        ([a, b, c, cut]) => {
          const y = Float64Array.from(a);
          axpy({ y, x: Float64Array.from(b), alpha: 0.5 }, 0, cut);
          axpy({ y, x: Float64Array.from(b), alpha: 0.5 }, cut, a.length);
          a.forEach((v, i) => expect(y[i]).toBeCloseTo(v + 0.5 * b[i]!, 12));
          const out = new Float64Array(a.length);
          const base = Float64Array.from(c);
          weightedSum(
            {
              out,
              inputs: [Float64Array.from(a), Float64Array.from(b)],
              weights: [2, -1],
              scale: 3,
              offset: base,
            },
            0,
            a.length,
          );
          a.forEach((v, i) => expect(out[i]).toBeCloseTo(c[i]! + 3 * (2 * v - b[i]!), 10));
        },
      ),
    );
  });

  it('signVote counts zero as positive; maskedDisjointMean averages agreeing entries', () => {
    const d1 = Float64Array.from([1, -2, 0, 3, 1]);
    const d2 = Float64Array.from([-1, -1, 0, -5, 0]);
    const sign = new Int8Array(5);
    signVote({ out: sign, deltas: [d1, d2], weights: [1, 1] }, 0, 5);
    expect(Array.from(sign)).toEqual([1, -1, 1, -1, 1]);
    const out = new Float64Array(5);
    maskedDisjointMean({ out, deltas: [d1, d2], weights: [1, 1], sign, normalize: true }, 0, 5);
    expect(Array.from(out)).toEqual([1, -1.5, 0, -5, 1]);
    maskedDisjointMean({ out, deltas: [d1, d2], weights: [2, 1], sign, normalize: false }, 0, 5);
    expect(Array.from(out)).toEqual([2, -5, 0, -5, 2]);
  });

  it('reductions add up over ranges; applyMask zeroes and scales', () => {
    const x = Float32Array.from([1, -2, 3, -4]);
    expect(absSum({ x }, 0, 2) + absSum({ x }, 2, 4)).toBe(10);
    expect(absSum({ x, mask: Uint8Array.from([1, 0, 0, 1]) }, 0, 4)).toBe(5);
    expect(dot({ a: x, b: x }, 0, 4)).toBe(30);
    applyMask({ x, mask: Uint8Array.from([1, 0, 1, 0]), scale: 2 }, 0, 4);
    expect(Array.from(x)).toEqual([2, 0, 6, 0]);
  });
});
