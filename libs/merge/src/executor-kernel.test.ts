// The executor's bf16 task-arithmetic fast path gives the bytes of the generic raw path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { taskArithmeticWasmStats } from '@hm3/tensor';
import {
  mergeRangeRaw,
  mergeRangeRawGeneric,
  taskArithmeticBf16,
  taskArithmeticBf16Js,
  type MergeRangeRawArgs,
} from './executor-kernel.js';
import { rng } from './methods/method-harness.test-helper.js';

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

/** NaN (payloads, both signs) and +-Inf. */
const NON_FINITE = [0x7fc0, 0xffc1, 0x7f81, 0x7f80, 0xff80];

/**
 * A base and three bf16 models of n elements: per element a typical magnitude, +-0, a subnormal or a
 * value near the largest finite (deltas that overflow f32, sums that overflow to Inf), each model the
 * base plus a few steps of its last bits or drawn the same way; at rate `special` per input NaN/Inf.
 */
function bigInputs(n: number, seed: number, special: number): number[][] {
  const random = rng(seed);
  const sign = () => (random() < 0.5 ? 0x8000 : 0);
  const value = () => {
    const r = random();
    if (r < 0.15) return sign(); // +-0
    if (r < 0.25) return Math.floor(random() * 0x80) | sign(); // subnormal (or 0)
    if (r < 0.3) return (0x7f00 + Math.floor(random() * 0x80)) | sign(); // near the largest finite
    return (0x3c00 + Math.floor(random() * 0x380)) | sign();
  };
  const inputs = [Array.from({ length: n }, value)];
  for (let j = 1; j <= 3; j++)
    inputs.push(
      inputs[0]!.map((b) => {
        if (random() < 0.3) return value();
        const x = (b + Math.round((random() - 0.5) * 40)) & 0xffff;
        return (x & 0x7f80) === 0x7f80 ? b : x; // a step that would make it NaN/Inf: keep the base's
      }),
    );
  for (const xs of inputs)
    for (let i = 0; i < n; i++)
      if (random() < special) xs[i] = NON_FINITE[Math.floor(random() * NON_FINITE.length)]!;
  return inputs;
}

describe('taskArithmeticBf16 with three models (the WebAssembly SIMD kernel)', () => {
  it('= taskArithmeticBf16Js: bytes and first NaN/Inf per input, over chunks, odd ranges, NaN/Inf anywhere', () => {
    const before = taskArithmeticWasmStats();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40_000 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(0, 0, 0.00002, 0.0003, 0.01),
        fc.tuple(
          fc.constantFrom(0.3, 1, -0.4, 0, -0, 1e-30, 2.5, -7),
          fc.constantFrom(0.4, 1, -1, 0, 3e5),
          fc.constantFrom(0.3, 1, -0.25, 0, 1e30),
        ),
        fc.boolean(),
        fc.constantFrom(1, 0.5, -1, 0, 3, 1e-3, 1e35),
        fc.integer({ min: 0, max: 40_000 }),
        fc.integer({ min: 0, max: 40_000 }),
        (n, seed, special, weights, normalize, lambda, x, y) => {
          const inputs = bigInputs(n, seed, special);
          const [from, to] = [Math.min(x % (n + 1), y % (n + 1)), Math.max(x % (n + 1), y % (n + 1))];
          const cut = from + ((to - from) >>> 1) + (seed % 7);
          const ranges = [
            [from, Math.min(to, cut)],
            [Math.min(to, cut), to],
          ] as const;
          const fast = args(inputs, weights, normalize, lambda);
          const slow = args(inputs, weights, normalize, lambda);
          const fastFirst = ranges.map(([a, b]) => taskArithmeticBf16(fast, a, b));
          const slowFirst = ranges.map(([a, b]) => taskArithmeticBf16Js(slow, a, b));
          expect(Array.from(new Uint16Array(fast.outRaw.buffer))).toEqual(
            Array.from(new Uint16Array(slow.outRaw.buffer)),
          );
          expect(fastFirst).toEqual(slowFirst);
        },
      ),
      { numRuns: 150 },
    );
    const after = taskArithmeticWasmStats();
    // the module did most ranges, and declined some (NaN/Inf inputs): both paths were compared
    expect(after.ranges - before.ranges - (after.declined - before.declined)).toBeGreaterThan(50);
    expect(after.declined - before.declined).toBeGreaterThan(5);
  });

  it("keeps the JS's zero signs: an all -0 weighted sum starts from +0", () => {
    // base -0, models +-0, negative weights: every w_j * d_j is -0; 0 + (-0) is +0, -0 + +0 is +0
    const zeros = [
      [0x8000, 0x8000, 0x0000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000],
      [0x8000, 0x0000, 0x0000, 0x8000, 0x0000, 0x8000, 0x0000, 0x8000, 0x0000],
      [0x0000, 0x8000, 0x8000, 0x8000, 0x0000, 0x0000, 0x8000, 0x8000, 0x0000],
      [0x8000, 0x8000, 0x0000, 0x0000, 0x0000, 0x8000, 0x8000, 0x0000, 0x8000],
    ];
    for (const lambda of [1, -1]) {
      const fast = args(zeros, [-0.5, -1, -2], false, lambda);
      const slow = args(zeros, [-0.5, -1, -2], false, lambda);
      taskArithmeticBf16(fast, 0, 9);
      taskArithmeticBf16Js(slow, 0, 9);
      expect(Array.from(new Uint16Array(fast.outRaw.buffer))).toEqual(
        Array.from(new Uint16Array(slow.outRaw.buffer)),
      );
    }
  });

  it('adds the weighted deltas in model order (f64 rounding: 2^60 + 1 - 2^60 is 0, 2^60 - 2^60 + 1 is 1)', () => {
    const [big, one, minus] = [0x5d80, 0x3f80, 0xdd80]; // 2^60, 1, -2^60; the base 0: deltas exact
    const orders = [
      [big, one, minus],
      [big, minus, one],
      [one, big, minus],
      [one, minus, big],
      [minus, big, one],
      [minus, one, big],
    ];
    const inputs = [orders.map(() => 0), ...[0, 1, 2].map((j) => orders.map((o) => o[j]!))];
    const fast = args(inputs, [1, 1, 1], false, 1);
    const slow = args(inputs, [1, 1, 1], false, 1);
    taskArithmeticBf16(fast, 0, 6);
    taskArithmeticBf16Js(slow, 0, 6);
    const out = Array.from(new Uint16Array(fast.outRaw.buffer));
    expect(out).toEqual(Array.from(new Uint16Array(slow.outRaw.buffer)));
    expect(out).toEqual([0, 0x3f80, 0, 0, 0x3f80, 0]);
  });

  it('leaves a NaN result (finite inputs: an overflowing delta times weight 0) to the JS', () => {
    const before = taskArithmeticWasmStats();
    // base -max, model 0 +max: the delta is +Inf in f32, and 0 * Inf is NaN
    const inputs = [
      [0xff7f, 0x3f80],
      [0x7f7f, 0x3f80],
      [0x3f80, 0x3f80],
      [0x3f80, 0x3f80],
    ];
    const fast = args(inputs, [0, 1, 1], false, 1);
    const slow = args(inputs, [0, 1, 1], false, 1);
    expect(taskArithmeticBf16(fast, 0, 2)).toEqual(taskArithmeticBf16Js(slow, 0, 2));
    expect(Array.from(new Uint16Array(fast.outRaw.buffer))).toEqual(
      Array.from(new Uint16Array(slow.outRaw.buffer)),
    );
    const after = taskArithmeticWasmStats();
    expect([after.ranges - before.ranges, after.declined - before.declined]).toEqual([1, 1]);
  });
});
