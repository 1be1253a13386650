import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  absDigitHistogram,
  countEqualAbs,
  kthLargestAbs,
  radixSelectWith,
  sumHistograms,
  topKMask,
  topKMaskOf,
} from './radix-select.js';

/** Reference: sort |x| descending, take element k-1. */
function sortedKth(values: number[], k: number) {
  const abs = values.map(Math.abs).sort((a, b) => b - a);
  const value = abs[k - 1]!;
  return {
    value,
    greater: abs.filter((a) => a > value).length,
    equal: abs.filter((a) => a === value).length,
  };
}

const floats = fc.array(fc.float({ noNaN: true }), { minLength: 1, maxLength: 400 });
// Small integers give many ties; doubles exercise the 4-level f64 path.
const tied = fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 400 });

describe('kthLargestAbs (radix select)', () => {
  it('equals a sort-based reference on f32 arrays', () => {
    fc.assert(
      fc.property(floats, fc.nat(), (values, kRaw) => {
        const x = Float32Array.from(values);
        const k = 1 + (kRaw % x.length);
        expect(kthLargestAbs(x, k)).toEqual(sortedKth(Array.from(x), k));
      }),
      { numRuns: 200 },
    );
  });

  it('equals a sort-based reference on f64 arrays, with ties', () => {
    fc.assert(
      fc.property(
        fc.oneof(tied, fc.array(fc.double({ noNaN: true }), { minLength: 1, maxLength: 300 })),
        fc.nat(),
        (values, kRaw) => {
          const x = Float64Array.from(values);
          const k = 1 + (kRaw % x.length);
          expect(kthLargestAbs(x, k)).toEqual(sortedKth(values, k));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('gives the same answer from per-range histograms summed (the pool path)', () => {
    const x = Float32Array.from({ length: 10_000 }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 3);
    const k = 1234;
    const ranges = [0, 2500, 2501, 7000, 10_000];
    const split = radixSelectWith(2, false, k, (level, prefix) =>
      sumHistograms(
        ranges.slice(0, -1).map((s, j) => absDigitHistogram({ x, level, prefix }, s, ranges[j + 1]!)),
      ),
    );
    expect(split).toEqual(kthLargestAbs(x, k));
  });

  it('rejects k outside [1, n]', () => {
    expect(() => kthLargestAbs(new Float32Array(3), 0)).toThrow(RangeError);
    expect(() => kthLargestAbs(new Float32Array(3), 4)).toThrow(RangeError);
  });
});

describe('topKMask', () => {
  it('keeps exactly k elements: every |x| kept >= every |x| dropped, ties by lowest index', () => {
    fc.assert(
      fc.property(fc.oneof(tied, floats), fc.nat(), (values, kRaw) => {
        const x = Float32Array.from(values);
        const n = x.length;
        const k = kRaw % (n + 1);
        const out = new Uint8Array(n);
        topKMaskOf(x, k, out, 'assign');
        // Reference: stable sort of indices by |x| descending, then index ascending.
        const order = Array.from({ length: n }, (_, i) => i).sort(
          (a, b) => Math.abs(x[b]!) - Math.abs(x[a]!) || a - b,
        );
        const expected = new Uint8Array(n);
        for (const i of order.slice(0, k)) expected[i] = 1;
        expect(out).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('splits across ranges with equalBefore from countEqualAbs', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => (i * 7) % 5);
    const k = 333;
    const whole = new Uint8Array(x.length);
    topKMaskOf(x, k, whole, 'assign');
    const sel = kthLargestAbs(x, k);
    const bounds = [0, 100, 555, 1000];
    const split = new Uint8Array(x.length);
    let before = 0;
    for (let j = 0; j + 1 < bounds.length; j++) {
      topKMask(
        { x, out: split, threshold: sel.value, quota: k - sel.greater, equalBefore: before, mode: 'assign' },
        bounds[j]!,
        bounds[j + 1]!,
      );
      before += countEqualAbs({ x, threshold: sel.value }, bounds[j]!, bounds[j + 1]!);
    }
    expect(split).toEqual(whole);
  });

  it("'clear' zeroes the top k only", () => {
    const x = Float64Array.from([1, -5, 3, 4, -2]);
    const out = new Uint8Array(5).fill(1);
    topKMaskOf(x, 2, out, 'clear');
    expect(Array.from(out)).toEqual([1, 0, 1, 0, 1]);
  });
});
