/**
 * The kernels on the worker pool: registration, and drivers for the multi-pass ones (radix select and
 * the top-k mask) whose passes combine per-range results. Arrays passed to a pool must be
 * SharedArrayBuffer-backed (allocShared / toShared).
 */
import type { IndexRange, WorkerPool } from '../worker-pool.js';
import type { FloatArray } from './float-array.js';
import {
  pickBin,
  radixLevels,
  sumHistograms,
  topKMaskOfTrivialK,
  valueFromDigits,
  type KthLargest,
} from './radix-select.js';

// Sources run under vitest/tsx (.ts); the built package loads .js.
const EXT = import.meta.url.endsWith('.ts') ? 'ts' : 'js';

/** Kernel name -> module file (without extension) in this folder. */
const KERNEL_MODULES: Readonly<Record<string, string>> = {
  axpy: 'axpy',
  weightedSum: 'weighted-sum',
  signVote: 'sign-vote',
  maskedDisjointMean: 'masked-disjoint-mean',
  tiesMerge: 'masked-disjoint-mean',
  taskVectorSum: 'weighted-sum',
  absSum: 'reductions',
  dot: 'reductions',
  applyMask: 'reductions',
  bernoulliMask: 'bernoulli-mask',
  absDigitHistogram: 'radix-select',
  topKMask: 'radix-select',
  countEqualAbs: 'radix-select',
  keepTopKRange: 'radix-select',
  decodeDeltas: 'raw-codec',
  encodeRange: 'raw-codec',
  dareMaskSums: 'bernoulli-mask',
  absSumChunks: 'reductions',
};

/** The kernel names registerKernels adds to a pool (each under its function's name). */
export const KERNEL_NAMES: readonly string[] = Object.keys(KERNEL_MODULES);

/** Registers every kernel on the pool (skipping names it already has). */
export function registerKernels(pool: WorkerPool): WorkerPool {
  for (const [name, file] of Object.entries(KERNEL_MODULES)) {
    if (!pool.has(name)) pool.register(name, new URL(`./${file}.${EXT}`, import.meta.url));
  }
  return pool;
}

/**
 * The k-th largest |x| (1 <= k <= n), its histogram passes split over the pool; `equalByRange`: per
 * range (in order), how many keys equal the selected one -- the last level's bin, so the count
 * countEqualAbs would give (for a non-NaN selection) without a pass of its own.
 */
export async function kthLargestAbsParallel(
  pool: WorkerPool,
  x: FloatArray,
  k: number,
  ranges: number | readonly IndexRange[] = x.length,
): Promise<KthLargest & { readonly equalByRange: readonly number[] }> {
  if (!Number.isInteger(k) || k < 1 || k > x.length) {
    throw new RangeError(`kthLargestAbs: k=${k} not in [1, ${x.length}]`);
  }
  const prefix: number[] = [];
  let greater = 0;
  let rank = k;
  let equal = 0;
  let equalByRange: number[] = [];
  for (let level = 0; level < radixLevels(x); level++) {
    const parts = await pool.run<Uint32Array>('absDigitHistogram', { x, level, prefix: [...prefix] }, ranges);
    const { bin, above, inBin } = pickBin(sumHistograms(parts), rank);
    greater += above;
    rank -= above;
    equal = inBin;
    equalByRange = parts.map((p) => p[bin]!);
    prefix.push(bin);
  }
  return { value: valueFromDigits(prefix, x instanceof Float64Array), greater, equal, equalByRange };
}

/** topKMaskOf over the pool: the same mask (ties by lowest index) whatever the split. */
export async function topKMaskParallel(
  pool: WorkerPool,
  x: FloatArray,
  k: number,
  out: Uint8Array,
  mode: 'assign' | 'clear',
  parts?: readonly IndexRange[],
): Promise<void> {
  const n = x.length;
  if (topKMaskOfTrivialK(n, k, out, mode)) return;
  const ranges = parts ?? splitEvenly(n, pool.size);
  const sel = await kthLargestAbsParallel(pool, x, k, ranges);
  const equalCounts = sel.equalByRange; // countEqualAbs per range, from the last histogram pass
  let before = 0;
  await Promise.all(
    ranges.map((r, j) => {
      const equalBefore = before;
      before += equalCounts[j]!;
      return pool.run(
        'topKMask',
        { x, out, threshold: sel.value, quota: k - sel.greater, equalBefore, mode },
        [r],
      );
    }),
  );
}

function splitEvenly(n: number, parts: number): IndexRange[] {
  const count = Math.max(1, Math.min(parts, n));
  const size = Math.ceil(n / count);
  const out: IndexRange[] = [];
  for (let s = 0; s < n; s += size) out.push({ start: s, end: Math.min(n, s + size) });
  return out;
}

/** keepTopKAbs over the pool: the same zeroing (ties by lowest index) whatever the split. */
export async function keepTopKAbsParallel(
  pool: WorkerPool,
  x: FloatArray,
  k: number,
  parts?: readonly IndexRange[],
): Promise<void> {
  const n = x.length;
  if (k <= 0) {
    x.fill(0);
    return;
  }
  if (k >= n) return;
  const ranges = parts ?? splitEvenly(n, pool.size);
  const sel = await kthLargestAbsParallel(pool, x, k, ranges);
  const equalCounts = sel.equalByRange; // countEqualAbs per range, from the last histogram pass
  let before = 0;
  await Promise.all(
    ranges.map((r, j) => {
      const equalBefore = before;
      before += equalCounts[j]!;
      return pool.run('keepTopKRange', { x, threshold: sel.value, quota: k - sel.greater, equalBefore }, [r]);
    }),
  );
}

/**
 * [0, n) split into at most `parts` contiguous ranges whose starts are multiples of `chunk` (the
 * per-chunk partial sums of absSumChunks / dareMaskSums: each chunk is summed by exactly one range).
 */
export function chunkAlignedRanges(n: number, parts: number, chunk: number): IndexRange[] {
  const chunks = Math.ceil(n / chunk);
  const count = Math.max(1, Math.min(parts, chunks));
  const per = Math.ceil(chunks / count);
  const out: IndexRange[] = [];
  for (let c = 0; c < chunks; c += per) out.push({ start: c * chunk, end: Math.min(n, (c + per) * chunk) });
  return out;
}
