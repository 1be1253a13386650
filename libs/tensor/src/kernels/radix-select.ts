import type { FloatArray } from './float-array.js';

/**
 * k-th largest |x| by radix select on the float's bit pattern: for non-negative IEEE floats the order
 * of the values is the order of their bits read as unsigned integers, so |x| (the bits with the sign
 * cleared) is ranked digit by digit, 16 bits at a time, most significant first: 2 passes over an f32
 * array, 4 over an f64 one, each O(n), no sort. Each pass is a histogram over a range, so passes split
 * across workers (sum the per-range histograms). NaN ranks above +Inf, as its bits do. Assumes a
 * little-endian host (x86, ARM), as every typed-array view here does.
 */

export const RADIX_BINS = 65536;

/** Digits per key: 2 for f32, 4 for f64. */
export function radixLevels(x: FloatArray): number {
  return x instanceof Float64Array ? 4 : 2;
}

export interface AbsDigitHistogramArgs {
  x: FloatArray;
  /** Which 16-bit digit of |x| (0 = most significant). */
  level: number;
  /** The digits chosen at levels 0..level-1: only elements whose key starts with them are counted. */
  prefix: number[];
}

/** Histogram (65 536 bins) of digit `level` of |x|'s bits among elements matching `prefix`, over [start, end). */
export function absDigitHistogram(args: AbsDigitHistogramArgs, start: number, end: number): Uint32Array {
  const { x, level, prefix } = args;
  const hist = new Uint32Array(RADIX_BINS);
  const u = new Uint32Array(x.buffer, x.byteOffset, x instanceof Float64Array ? x.length * 2 : x.length);
  const p0 = prefix[0] ?? 0;
  const p1 = prefix[1] ?? 0;
  const p2 = prefix[2] ?? 0;
  if (x instanceof Float32Array) {
    if (level === 0) {
      for (let i = start; i < end; i++) hist[(u[i]! & 0x7fffffff) >>> 16]!++;
    } else if (level === 1) {
      for (let i = start; i < end; i++) {
        const key = u[i]! & 0x7fffffff;
        if (key >>> 16 === p0) hist[key & 0xffff]!++;
      }
    } else throw new RangeError(`absDigitHistogram: level ${level} out of range for f32`);
    return hist;
  }
  const hiPrefix = p0 * 65536 + p1;
  for (let i = start; i < end; i++) {
    const hi = u[2 * i + 1]! & 0x7fffffff;
    switch (level) {
      case 0:
        hist[hi >>> 16]!++;
        break;
      case 1:
        if (hi >>> 16 === p0) hist[hi & 0xffff]!++;
        break;
      case 2:
        if (hi === hiPrefix) hist[u[2 * i]! >>> 16]!++;
        break;
      case 3:
        if (hi === hiPrefix && u[2 * i]! >>> 16 === p2) hist[u[2 * i]! & 0xffff]!++;
        break;
      default:
        throw new RangeError(`absDigitHistogram: level ${level} out of range for f64`);
    }
  }
  return hist;
}

/** Sums per-range histograms (the results of a pool run) into one. */
export function sumHistograms(parts: readonly Uint32Array[]): Uint32Array {
  const total = new Uint32Array(RADIX_BINS);
  for (const part of parts) for (let b = 0; b < RADIX_BINS; b++) total[b]! += part[b]!;
  return total;
}

/**
 * The bin holding the k-th largest (1-based) among the counted elements, the count strictly above that
 * bin, and the count in it.
 */
export function pickBin(hist: Uint32Array, k: number): { bin: number; above: number; inBin: number } {
  let above = 0;
  for (let b = RADIX_BINS - 1; b >= 0; b--) {
    const c = hist[b]!;
    if (above + c >= k) return { bin: b, above, inBin: c };
    above += c;
  }
  throw new RangeError(`pickBin: k=${k} exceeds the ${above} counted elements`);
}

/** The result of a selection: the k-th largest |x|, and how many elements are above and equal to it. */
export interface KthLargest {
  readonly value: number;
  readonly greater: number;
  readonly equal: number;
}

/** The float whose |x| key has these 16-bit digits. */
export function valueFromDigits(digits: readonly number[], f64: boolean): number {
  if (!f64) {
    const u = new Uint32Array([((digits[0]! << 16) | digits[1]!) >>> 0]);
    return new Float32Array(u.buffer)[0]!;
  }
  const u = new Uint32Array([
    ((digits[2]! << 16) | digits[3]!) >>> 0,
    ((digits[0]! << 16) | digits[1]!) >>> 0,
  ]);
  return new Float64Array(u.buffer)[0]!;
}

/**
 * Drives a radix selection given a histogram source (sequential here; a pool-backed one sums per-range
 * histograms): the k-th largest |x| (1 <= k <= n).
 */
export function radixSelectWith(
  levels: number,
  f64: boolean,
  k: number,
  histogram: (level: number, prefix: number[]) => Uint32Array,
): KthLargest {
  const prefix: number[] = [];
  let greater = 0;
  let rank = k;
  let equal = 0;
  for (let level = 0; level < levels; level++) {
    const { bin, above, inBin } = pickBin(histogram(level, prefix), rank);
    greater += above;
    rank -= above;
    equal = inBin;
    prefix.push(bin);
  }
  return { value: valueFromDigits(prefix, f64), greater, equal };
}

/** The k-th largest |x[i]| (1-based k, 1 <= k <= x.length) with the counts above and equal to it. */
export function kthLargestAbs(x: FloatArray, k: number): KthLargest {
  if (!Number.isInteger(k) || k < 1 || k > x.length) {
    throw new RangeError(`kthLargestAbs: k=${k} not in [1, ${x.length}]`);
  }
  return radixSelectWith(radixLevels(x), x instanceof Float64Array, k, (level, prefix) =>
    absDigitHistogram({ x, level, prefix }, 0, x.length),
  );
}

export interface TopKMaskArgs {
  x: FloatArray;
  out: Uint8Array;
  /** The k-th largest |x| (from kthLargestAbs). */
  threshold: number;
  /** How many elements equal to the threshold belong to the top k: k - greater. */
  quota: number;
  /** Elements equal to the threshold before `start` (0 for a sequential run; a prefix sum of countEqualAbs otherwise). */
  equalBefore: number;
  /** 'assign': out[i] = 1 in the top k, else 0. 'clear': out[i] = 0 in the top k, else untouched. */
  mode: 'assign' | 'clear';
}

/**
 * Marks the top k by |x| over [start, end): |x| above the threshold, and the first `quota` elements
 * equal to it in index order (ties broken by position, so the selection is deterministic).
 */
export function topKMask(args: TopKMaskArgs, start: number, end: number): void {
  const { x, out, threshold, quota, mode } = args;
  let seen = args.equalBefore;
  for (let i = start; i < end; i++) {
    const a = Math.abs(x[i]!);
    let inTop = a > threshold;
    if (!inTop && a === threshold) {
      inTop = seen < quota;
      seen++;
    }
    if (mode === 'assign') out[i] = inTop ? 1 : 0;
    else if (inTop) out[i] = 0;
  }
}

/** How many |x[i]| equal `threshold` over [start, end) (for the equalBefore of parallel topKMask runs). */
export function countEqualAbs(
  args: { x: FloatArray; threshold: number },
  start: number,
  end: number,
): number {
  const { x, threshold } = args;
  let c = 0;
  for (let i = start; i < end; i++) if (Math.abs(x[i]!) === threshold) c++;
  return c;
}

/**
 * Writes the mask when k selects nothing (k <= 0) or everything (k >= n); returns false otherwise.
 * Shared by the sequential and the pooled top-k mask.
 */
export function topKMaskOfTrivialK(n: number, k: number, out: Uint8Array, mode: 'assign' | 'clear'): boolean {
  if (k <= 0) {
    if (mode === 'assign') out.fill(0, 0, n);
    return true;
  }
  if (k >= n) {
    out.fill(mode === 'assign' ? 1 : 0, 0, n);
    return true;
  }
  return false;
}

/**
 * The top-k-by-|x| mask of a whole array (sequential): 'assign' writes 1 for the top k and 0 elsewhere;
 * 'clear' zeroes the top k and leaves the rest. k <= 0 selects nothing, k >= n everything.
 */
export function topKMaskOf(x: FloatArray, k: number, out: Uint8Array, mode: 'assign' | 'clear'): void {
  const n = x.length;
  if (topKMaskOfTrivialK(n, k, out, mode)) return;
  const sel = kthLargestAbs(x, k);
  topKMask({ x, out, threshold: sel.value, quota: k - sel.greater, equalBefore: 0, mode }, 0, n);
}

/**
 * Zeroes every element of `x` but the k largest by |x| (ties broken by lowest index, as topKMaskOf):
 * topKMaskOf then applyMask with scale 1 in one pass, without a mask array. f32 compares the bit
 * patterns (|x| order is their order; NaN is never kept). k <= 0 zeroes all, k >= n keeps all.
 */
export function keepTopKAbs(x: FloatArray, k: number): void {
  const n = x.length;
  if (k <= 0) {
    x.fill(0);
    return;
  }
  if (k >= n) return;
  const sel = kthLargestAbs(x, k);
  keepTopKRange({ x, threshold: sel.value, quota: k - sel.greater, equalBefore: 0 }, 0, n);
}

export interface KeepTopKRangeArgs {
  /** Updated in place: entries outside the top k are zeroed. */
  x: FloatArray;
  /** The k-th largest |x| (from kthLargestAbs). */
  threshold: number;
  /** How many elements equal to the threshold belong to the top k: k - greater. */
  quota: number;
  /** Elements equal to the threshold before `start` (a prefix sum of countEqualAbs). */
  equalBefore: number;
}

/** keepTopKAbs's zeroing pass over [start, end), given the selection (so ranges can run on the pool). */
export function keepTopKRange(args: KeepTopKRangeArgs, start: number, end: number): void {
  const { x, threshold, quota } = args;
  if (x instanceof Float32Array) {
    const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const t = (new Uint32Array(new Float32Array([threshold]).buffer)[0]! & 0x7fffffff) >>> 0;
    keepTopKBits(u, t, quota, args.equalBefore, start, end);
    return;
  }
  let seen = args.equalBefore;
  for (let i = start; i < end; i++) {
    const a = Math.abs(x[i]!);
    if (a > threshold) continue;
    if (a === threshold && seen++ < quota) continue;
    x[i] = 0;
  }
}

/**
 * keepTopKRange on the bit patterns of an f32 array (`u` views it): zeroes u[i] over [start, end)
 * unless its key (the bits with the sign cleared) is above `key` and not NaN, or equals `key`, is not
 * NaN and is among the first `quota` such entries counting from `seen` (the ties before `start`).
 * `key` may be -1 (every non-NaN entry is above it). Returns the ties seen so far, for the next range.
 */
export function keepTopKBits(
  u: Uint32Array,
  key: number,
  quota: number,
  seen: number,
  start: number,
  end: number,
): number {
  for (let i = start; i < end; i++) {
    const k = u[i]! & 0x7fffffff;
    if (k === key) {
      // ties with the threshold (rare): the first `quota` of them, in index order
      if (k <= 0x7f800000 && seen++ < quota) continue;
      u[i] = 0;
      continue;
    }
    // above the threshold and not NaN: keep (no data-dependent branch: the keep-mask is 0 or ~0)
    u[i] = u[i]! & -(+(k > key) & +(k <= 0x7f800000));
  }
  return seen;
}
