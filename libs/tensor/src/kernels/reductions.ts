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

/** Elements per partial sum of absSumBothChunked (the same as the DARE kernel's, bernoulli-mask.ts). */
const L1_CHUNK = 65536;

/**
 * absSumBoth over the whole of x, as the sum of fixed L1_CHUNK-element partial sums (each in f64 in
 * index order) added in chunk order: a definition a worker pool reproduces exactly for any split of the
 * work (absSumChunks per chunk-aligned range, then the same additions), so the L1 rescale factor does
 * not depend on the thread count.
 */
export function absSumBothChunked(args: { x: FloatArray; mask: Uint8Array }): [number, number] {
  const n = args.x.length;
  const sums = new Float64Array(2 * Math.ceil(n / L1_CHUNK));
  absSumChunks({ ...args, sums }, 0, n);
  return addChunkSums(sums);
}

/** [sum of sums[2c], sum of sums[2c + 1]] over the chunks, in chunk order. */
export function addChunkSums(sums: Float64Array): [number, number] {
  let all = 0;
  let kept = 0;
  for (let c = 0; c + 1 < sums.length; c += 2) {
    all += sums[c]!;
    kept += sums[c + 1]!;
  }
  return [all, kept];
}

/**
 * Per L1_CHUNK-element chunk c of x covered by [start, end) (start a multiple of L1_CHUNK):
 * sums[2c], sums[2c + 1] = absSumBoth over the chunk.
 */
export function absSumChunks(
  args: { x: FloatArray; mask: Uint8Array; sums: Float64Array },
  start: number,
  end: number,
): void {
  if (start % L1_CHUNK !== 0)
    throw new RangeError(`absSumChunks: range start ${start} is not a multiple of ${L1_CHUNK}`);
  for (let c0 = start; c0 < end; c0 += L1_CHUNK) {
    const [all, kept] = absSumBoth(args, c0, Math.min(end, c0 + L1_CHUNK));
    const c = c0 / L1_CHUNK;
    args.sums[2 * c] = all;
    args.sums[2 * c + 1] = kept;
  }
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
