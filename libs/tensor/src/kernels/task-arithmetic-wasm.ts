/**
 * task_arithmetic of three bf16 models into bf16 in WebAssembly SIMD (the `taskArithmetic` export of
 * assembly/ties-banded.ts, in the same module as the ties kernel, loaded once per thread). The caller
 * (the executor's taskArithmeticBf16 in @hm3/merge, the scalar reference) keeps its JS loop as the
 * fallback: for each range it asks taskArithmeticBf16Wasm's block function first, which copies the
 * range block by block into the module's memory, merges it there and copies the bf16 result out, or
 * answers false when a block has a NaN/Inf input or a NaN result (rare): the caller then does the whole
 * range in JS, which also finds the first NaN/Inf per input. So the bytes and the NaN/Inf indices are
 * the JS kernel's either way.
 */
import { loadWasmKernel } from './ties-banded-wasm.js';

/** Merges [start, end) into the output; false (nothing of the range to be trusted) when it declines. */
export type TaskArithmeticBf16Range = (start: number, end: number) => boolean;

export interface TaskArithmeticBf16WasmArgs {
  /** The bf16 bits of the base, then of the three models. */
  readonly bits: readonly Uint16Array[];
  /** Written: the merged bf16 bits (same indices as the inputs). */
  readonly outBits: Uint16Array;
  /** The models' weights, in model order. */
  readonly weights: readonly number[];
  /** lambda, divided by the weights' sum when normalized: out = base + scale * sum of w_j * delta_j. */
  readonly scale: number;
}

/** Ranges the module merged and ranges it declined (left to the JS), on this thread so far. */
const stats = { ranges: 0, declined: 0 };

/** Ranges the module merged and declined on this thread so far (a copy). */
export function taskArithmeticWasmStats(): { ranges: number; declined: number } {
  return { ...stats };
}

/**
 * The WebAssembly task_arithmetic over ranges of these inputs, or null when the module does not load on
 * this thread or there are not exactly three models (the JS does those).
 */
export function taskArithmeticBf16Wasm(args: TaskArithmeticBf16WasmArgs): TaskArithmeticBf16Range | null {
  const k = loadWasmKernel();
  if (k === null || args.bits.length !== 4 || args.weights.length !== 3) return null;
  const { exports, u16, block } = k;
  const [w0, w1, w2] = args.weights as [number, number, number];
  const { bits, outBits, scale } = args;
  const inAt = bits.map((_, j) => exports.inputPtr(j) >>> 1);
  const outAt = exports.outputPtr() >>> 1;
  return (start, end) => {
    // the ties kernel shares the weights' globals: set them for each range
    exports.setupTaskArithmetic(w0, w1, w2, scale);
    stats.ranges++;
    for (let a = start; a < end; a += block) {
      const m = Math.min(end, a + block) - a;
      // the module takes whole groups of 8: zeros after the last element (their results unused)
      const m8 = (m + 7) & ~7;
      for (let j = 0; j < 4; j++) {
        u16.set(bits[j]!.subarray(a, a + m), inAt[j]);
        u16.fill(0, inAt[j]! + m, inAt[j]! + m8);
      }
      if (exports.taskArithmetic(m8) !== 0) {
        stats.declined++;
        return false;
      }
      outBits.set(u16.subarray(outAt, outAt + m), a);
    }
    return true;
  };
}
