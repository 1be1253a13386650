// The WebAssembly task_arithmetic kernel's contract; its bytes against the JS kernel on random inputs
// are tested where that lives (@hm3/merge's executor-kernel.test.ts). Loading in pool workers: the
// module is the ties kernel's (ties-banded-wasm.test.ts).
import { describe, expect, it } from 'vitest';
import { taskArithmeticBf16Wasm, taskArithmeticWasmStats } from './task-arithmetic-wasm.js';

const ONE = 0x3f80;
const TWO = 0x4000;
const NAN = 0x7fc0;

/** A base and three models of n elements (base 1, models 2), and an output. */
function inputs(n: number) {
  return {
    bits: [new Uint16Array(n).fill(ONE), ...[0, 1, 2].map(() => new Uint16Array(n).fill(TWO))],
    outBits: new Uint16Array(n),
  };
}

describe('taskArithmeticBf16Wasm', () => {
  it('merges three models over a range of any length: base + scale * sum of w_j * delta_j', () => {
    const io = inputs(20_003);
    const run = taskArithmeticBf16Wasm({ ...io, weights: [0.5, 0.25, 0.25], scale: 2 });
    expect(run).not.toBe(null);
    expect(run!(3, 20_001)).toBe(true);
    // 1 + 2 * (0.5 + 0.25 + 0.25) = 3 (0x4040); outside the range untouched
    expect(io.outBits.subarray(3, 20_001).every((x) => x === 0x4040)).toBe(true);
    expect([io.outBits[2], io.outBits[20_001]]).toEqual([0, 0]);
  });

  it('declines a range with a NaN/Inf input (the caller does it in JS), and other model counts', () => {
    const io = inputs(100);
    io.bits[2]![97] = NAN;
    const run = taskArithmeticBf16Wasm({ ...io, weights: [1, 1, 1], scale: 1 })!;
    const before = taskArithmeticWasmStats();
    expect(run(0, 90)).toBe(true);
    expect(run(90, 100)).toBe(false);
    const after = taskArithmeticWasmStats();
    expect([after.ranges - before.ranges, after.declined - before.declined]).toEqual([2, 1]);
    expect(
      taskArithmeticBf16Wasm({ bits: io.bits.slice(0, 3), outBits: io.outBits, weights: [1, 1], scale: 1 }),
    ).toBe(null);
  });
});
