import type { FloatArray } from './float-array.js';

/** sum |x[i]| over [start, end), in f64 (the L1 norm of a range; partial sums add up). */
export function absSum(args: { x: FloatArray; mask?: Uint8Array }, start: number, end: number): number {
  const { x, mask } = args;
  let s = 0;
  if (mask === undefined) for (let i = start; i < end; i++) s += Math.abs(x[i]!);
  else for (let i = start; i < end; i++) if (mask[i] !== 0) s += Math.abs(x[i]!);
  return s;
}

/**
 * [sum |x[i]|, sum of |x[i]| where mask[i] is 1] over [start, end), in f64, in one pass: the same two
 * values as absSum without and with the 0/1 mask (each sum in index order; a dropped entry adds +0).
 */
export function absSumBoth(
  args: { x: FloatArray; mask: Uint8Array },
  start: number,
  end: number,
): [number, number] {
  const { x, mask } = args;
  let all = 0;
  let kept = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(x[i]!);
    all += a;
    kept += mask[i]! !== 0 ? a : 0;
  }
  return [all, kept];
}

/** sum a[i] * b[i] over [start, end), in f64 (dot products and squared norms for slerp). */
export function dot(args: { a: FloatArray; b: FloatArray }, start: number, end: number): number {
  const { a, b } = args;
  let s = 0;
  for (let i = start; i < end; i++) s += a[i]! * b[i]!;
  return s;
}

/** x[i] = mask[i] ? x[i] * scale : 0 over [start, end) (apply a keep-mask, then rescale). */
export function applyMask(
  args: { x: FloatArray; mask: Uint8Array; scale: number },
  start: number,
  end: number,
): void {
  const { x, mask, scale } = args;
  for (let i = start; i < end; i++) x[i] = mask[i] !== 0 ? x[i]! * scale : 0;
}
