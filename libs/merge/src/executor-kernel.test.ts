// The executor's bf16 task-arithmetic fast path gives the bytes of the generic raw path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  mergeRangeRaw,
  mergeRangeRawGeneric,
  taskArithmeticBf16,
  type MergeRangeRawArgs,
} from './executor-kernel.js';

/** bf16 bit patterns: any finite value (both signs, subnormals, zeros), now and then NaN or Inf. */
const bf16 = fc.oneof(
  { weight: 30, arbitrary: fc.integer({ min: 0, max: 0xffff }).filter((h) => (h & 0x7f80) !== 0x7f80) },
  { weight: 30, arbitrary: fc.integer({ min: 0x3c00, max: 0x3f7f }) }, // |x| in [2^-7, 1): typical weights
  { weight: 1, arbitrary: fc.constantFrom(0x7f80, 0xff80, 0x7fc0, 0xffc1) },
);

function args(inputs: number[][], weights: number[], normalize: boolean, lambda: number): MergeRangeRawArgs {
  const n = inputs[0]!.length;
  return {
    method: 'task_arithmetic',
    raw: inputs.map((xs) => new Uint8Array(Uint16Array.from(xs).buffer)),
    dtypes: inputs.map(() => 'BF16' as const),
    hasBase: true,
    compute: 'F32',
    outRaw: new Uint8Array(2 * n),
    outDtype: 'BF16',
    checkFinite: true,
    ids: weights.map((_, i) => `m${i}`),
    modelParams: weights.map((weight) => ({ weight })),
    params: { normalize, lambda },
    name: 't',
    layerIndex: null,
    seed: 0n,
  };
}

describe('taskArithmeticBf16', () => {
  it('= mergeRangeRawGeneric (decode, task_arithmetic, encode): bytes and first NaN/Inf per input', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((k) =>
          fc.tuple(
            fc.integer({ min: 1, max: 300 }).chain((n) =>
              fc.array(fc.array(bf16, { minLength: n, maxLength: n }), {
                minLength: k + 1,
                maxLength: k + 1,
              }),
            ),
            fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: k, maxLength: k }),
          ),
        ),
        fc.boolean(),
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.integer({ min: 0, max: 300 }),
        ([inputs, weights], normalize, lambda, cut) => {
          const n = inputs[0]!.length;
          const c = cut % (n + 1);
          const fast = args(inputs, weights, normalize, lambda);
          const slow = args(inputs, weights, normalize, lambda);
          const fastFirst = [taskArithmeticBf16(fast, 0, c), taskArithmeticBf16(fast, c, n)];
          const slowFirst = [mergeRangeRawGeneric(slow, 0, c), mergeRangeRawGeneric(slow, c, n)];
          expect(fast.outRaw).toEqual(slow.outRaw);
          expect(fastFirst).toEqual(slowFirst);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is the path mergeRangeRaw takes for bf16 task arithmetic', () => {
    const a = args(
      [
        [0x3f80, 0x4000],
        [0x3f00, 0x4040],
      ],
      [0.5],
      false,
      1,
    );
    expect(mergeRangeRaw(a, 0, 2)).toEqual([-1, -1]);
    expect(Array.from(new Uint16Array(a.outRaw.buffer))).toEqual([0x3f40, 0x4020]); // 0.75, 2.5
  });
});
