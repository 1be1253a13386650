// The fused kernels of the merge hot path give the bytes of the kernels they fuse, run one after another.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkerPool, allocShared } from '../worker-pool.js';
import { maskedDisjointMean, tiesMerge } from './masked-disjoint-mean.js';
import { keepTopKAbsParallel, registerKernels } from './parallel.js';
import { keepTopKAbs, topKMaskOf } from './radix-select.js';
import { absSum, absSumBoth, applyMask } from './reductions.js';
import { signVote } from './sign-vote.js';
import { taskVectorSum, weightedSum } from './weighted-sum.js';

type Kind = 'f32' | 'f64';
const make = (kind: Kind, xs: readonly number[]) =>
  kind === 'f32' ? Float32Array.from(xs) : Float64Array.from(xs);
const bytes = (a: Float32Array | Float64Array) =>
  Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/** Values with many zeros, ties and both signs (bf16-like: few mantissa bits). */
const value = fc.oneof(
  fc.constant(0),
  fc.constant(-0),
  fc.integer({ min: -64, max: 64 }).map((v) => v / 16),
  fc.double({ min: -4, max: 4, noNaN: true }),
);
const arrays = (k: number) =>
  fc
    .integer({ min: 1, max: 60 })
    .chain((n) => fc.array(fc.array(value, { minLength: n, maxLength: n }), { minLength: k, maxLength: k }));
const weight = fc.double({ min: -2, max: 2, noNaN: true });

describe('fused kernels', () => {
  it('taskVectorSum = the deltas in an array of the element type, then weightedSum with the base', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Kind>('f32', 'f64'),
        fc
          .integer({ min: 1, max: 5 })
          .chain((k) => fc.tuple(arrays(k + 1), fc.array(weight, { minLength: k, maxLength: k }))),
        weight,
        (kind, [xs, weights], scale) => {
          const [b, ...ms] = xs.map((x) => make(kind, x));
          const base = b!;
          const n = base.length;
          const deltas = ms.map((m) => {
            const d = make(kind, new Array<number>(n).fill(0));
            for (let i = 0; i < n; i++) d[i] = m[i]! - base[i]!;
            return d;
          });
          const want = make(kind, new Array<number>(n).fill(0));
          weightedSum({ out: want, inputs: deltas, weights, scale, offset: base }, 0, n);
          const got = make(kind, new Array<number>(n).fill(0));
          const cut = Math.floor(n / 2);
          taskVectorSum({ out: got, base, models: ms, weights, scale }, 0, cut);
          taskVectorSum({ out: got, base, models: ms, weights, scale }, cut, n);
          expect(bytes(got)).toEqual(bytes(want));
        },
      ),
    );
  });

  it('tiesMerge = signVote, maskedDisjointMean, then the base plus lambda times it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Kind>('f32', 'f64'),
        fc
          .integer({ min: 1, max: 4 })
          .chain((k) =>
            fc.tuple(
              arrays(k + 1),
              fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { minLength: k, maxLength: k }),
            ),
          ),
        fc.boolean(),
        weight,
        (kind, [xs, weights], normalize, lambda) => {
          const [base, ...deltas] = xs.map((x) => make(kind, x)) as [Float32Array, ...Float32Array[]];
          const n = base.length;
          const sign = new Int8Array(n);
          signVote({ out: sign, deltas, weights }, 0, n);
          const mixed = make(kind, new Array<number>(n).fill(0));
          maskedDisjointMean({ out: mixed, deltas, weights, sign, normalize }, 0, n);
          const want = make(kind, new Array<number>(n).fill(0));
          weightedSum({ out: want, inputs: [mixed], weights: [lambda], offset: base }, 0, n);
          const got = make(kind, new Array<number>(n).fill(0));
          tiesMerge({ out: got, base, deltas, weights, normalize, lambda }, 0, n);
          expect(bytes(got)).toEqual(bytes(want));
        },
      ),
    );
  });

  it('keepTopKAbs = topKMaskOf then applyMask with scale 1; absSumBoth = absSum without and with the mask', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Kind>('f32', 'f64'),
        arrays(1),
        fc.double({ min: -0.1, max: 1.1, noNaN: true }),
        (kind, [x], density) => {
          const n = x!.length;
          const k = Math.floor(density * n);
          const want = make(kind, x!);
          const mask = new Uint8Array(n);
          topKMaskOf(want, k, mask, 'assign');
          expect(absSumBoth({ x: want, mask }, 0, n)).toEqual([
            absSum({ x: want }, 0, n),
            absSum({ x: want, mask }, 0, n),
          ]);
          applyMask({ x: want, mask, scale: 1 }, 0, n);
          const got = make(kind, x!);
          keepTopKAbs(got, k);
          expect(bytes(got)).toEqual(bytes(want));
        },
      ),
    );
  });

  const pool = registerKernels(new WorkerPool({ size: 2, minRangeLength: 8 }));
  afterAll(() => pool.close());

  it('keepTopKAbsParallel = keepTopKAbs, ties by lowest index across ranges', async () => {
    for (const kind of ['f32', 'f64'] as const) {
      const n = 5000;
      const values = Array.from({ length: n }, (_, i) => ((i * 7919) % 23) - 11); // many ties
      const want = make(kind, values);
      keepTopKAbs(want, 1234);
      const got = kind === 'f32' ? allocShared(Float32Array, n) : allocShared(Float64Array, n);
      got.set(values);
      await keepTopKAbsParallel(pool, got, 1234, [
        { start: 0, end: 1700 },
        { start: 1700, end: 3100 },
        { start: 3100, end: n },
      ]);
      expect(bytes(got)).toEqual(bytes(want));
    }
  }, 30_000); // starts a worker pool
});
