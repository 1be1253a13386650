/**
 * The kernels on the worker pool: registration, and drivers for the multi-pass ones (radix select and
 * the top-k mask) whose passes combine per-range results. Arrays passed to a pool must be
 * SharedArrayBuffer-backed (allocShared / toShared).
 */
import { DTYPE_SIZES, decodeFloats, type FloatDType } from '../dtypes.js';
import type { IndexRange, WorkerPool } from '../worker-pool.js';
import type { FloatArray } from './float-array.js';
import type { KernelMemory } from './kernel-memory.js';
import {
  RADIX_BINS,
  pickBin,
  radixLevels,
  sumHistograms,
  topKMaskOfTrivialK,
  valueFromDigits,
  type KthLargest,
} from './radix-select.js';
import {
  bandedBuffers,
  type BandedBuffers,
  type TiesBandRule,
  type TiesKeep,
  type TiesMergeBandedArgs,
  type TiesMergeBandedResult,
  type TiesRawHistogramsResult,
} from './ties-raw.js';

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
  tiesRawHistograms: 'ties-raw',
  tiesMergeRaw: 'ties-raw',
  tiesMergeBanded: 'ties-banded-wasm',
  tiesFixupRaw: 'ties-raw',
  tiesFixup: 'ties-banded-wasm',
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

export interface TiesMergeRawOptions {
  /** The raw little-endian bytes of the base, then of each model (n elements each), shared. */
  readonly raw: readonly Uint8Array[];
  readonly dtypes: readonly FloatDType[];
  /**
   * Per model, how many entries of its task vector to keep by |delta| (keepTopKAbs's k: <= 0 none,
   * >= n all); null keeps the whole task vector (no sparsification, NaN included).
   */
  readonly keep: readonly (number | null)[];
  readonly weights: readonly number[];
  readonly normalize: boolean;
  readonly lambda: number;
  /** Written: the merged tensor encoded as `outDtype`, shared. */
  readonly outRaw: Uint8Array;
  readonly outDtype: FloatDType;
  /**
   * Called after the first pass with, per range (in order), per input (base first), the index of its
   * first NaN/Inf in the range (-1: none), as decodeDeltas returns them; may throw to stop the merge.
   */
  readonly onDecoded?: (firsts: readonly (readonly number[])[]) => void;
  /** tiesThresholdBands of these inputs and `keep`, when the caller took them already (off the critical path). */
  readonly bands?: readonly (TiesBand | null)[];
  /** The KernelMemory `raw` and `outRaw` may lie in: where they all do, the ties kernel works in place. */
  readonly memory?: KernelMemory;
}

/** A band of |delta| keys [lo, hi) predicted to hold a model's threshold, and the share of a sample in it. */
export interface TiesBand {
  readonly lo: number;
  readonly hi: number;
  readonly fraction: number;
}

/**
 * TIES of a whole tensor of n elements from raw bytes on the pool, in at most three pool runs (see
 * ties-raw.ts): the bytes of decodeDeltas, keepTopKAbsParallel per model, tiesMerge and encodeRange
 * one after another, whatever the split. f32 compute.
 */
export async function tiesMergeRawParallel(
  pool: WorkerPool,
  n: number,
  options: TiesMergeRawOptions,
  parts?: readonly IndexRange[],
): Promise<void> {
  const ranges = parts ?? splitEvenly(n, pool.size);
  const models = options.raw.length - 1;
  const inputs = { raw: [...options.raw], dtypes: [...options.dtypes] };
  const ks = options.keep.map((k) => (k === null || k >= n ? null : Math.max(0, k)));
  const topK = ks.map((k) => k !== null && k > 0);
  // level 0: decode, NaN/Inf, the top 16 bits of every sparsified model's |delta|, and the keys in the
  // band a sample puts the threshold in (so level 1 mostly needs no pass)
  const bands = options.bands ?? tiesThresholdBands(options.raw, options.dtypes, n, options.keep);
  let reported = false;
  if (
    models === 3 &&
    options.outDtype === 'BF16' &&
    options.outRaw.byteOffset % 2 === 0 &&
    options.dtypes.every((d) => d === 'BF16') &&
    options.raw.every((r) => r.byteOffset % 2 === 0) &&
    topK.every((t, j) => !t || bands[j] !== null)
  ) {
    // one pass with the thresholds predicted, a fix-up of the elements left open
    const done = await tiesMergeBandedParallel(pool, ranges, options, ks, bands);
    if (done) return;
    reported = true;
  }
  const level0 = await pool.run<TiesRawHistogramsResult>(
    'tiesRawHistograms',
    { ...inputs, level: 0, prefixes: topK.map((t) => (t ? 0 : -1)), bands },
    ranges,
  );
  if (!reported) options.onDecoded?.(level0.map((r) => r.first));
  const keep: TiesKeep[][] = ranges.map(() => []); // per range, per model
  const prefixes = new Array<number>(models).fill(-1);
  const pending: { rank: number; greater: number }[] = [];
  /** Sets model j's selection, given the low digit's histogram and the per-range counts of a key. */
  const settle = (j: number, hist1: Uint32Array, equalIn: (range: number, key: number) => number) => {
    const { rank, greater } = pending[j]!;
    const { bin, above } = pickBin(hist1, rank);
    const key = prefixes[j]! * 65536 + bin;
    const quota = ks[j]! - (greater + above);
    let before = 0;
    for (let r = 0; r < ranges.length; r++) {
      keep[r]![j] = { kind: 'top', key, quota, equalBefore: before };
      before += equalIn(r, key);
    }
    prefixes[j] = -1;
  };
  for (let j = 0; j < models; j++) {
    const k = ks[j]!;
    pending.push({ rank: 0, greater: 0 });
    for (const rangeKeep of keep) rangeKeep.push({ kind: k === null ? 'all' : 'none' });
    if (k === null || k === 0) continue;
    const { bin, above, inBin } = pickBin(sumHistograms(level0.map((r) => r.hists[j]!)), k);
    if (inBin === k - above) {
      // every key of the bin is kept: the threshold is just below the bin, with no ties to share out
      for (const rangeKeep of keep)
        rangeKeep[j] = { kind: 'top', key: bin * 65536 - 1, quota: 0, equalBefore: 0 };
      continue;
    }
    prefixes[j] = bin;
    pending[j] = { rank: k - above, greater: above };
    const band = bands[j];
    const lists = level0.map((r) => r.bandKeys[j] ?? null);
    if (band === null || band === undefined || band.lo > bin * 65536 || band.hi < (bin + 1) * 65536) continue;
    if (lists.some((l) => l === null)) continue;
    // level 1 from the collected keys of the band
    const hist1 = new Uint32Array(RADIX_BINS);
    for (const list of lists as Uint32Array[])
      for (let i = 0; i < list.length; i++) if (list[i]! >>> 16 === bin) hist1[list[i]! & 0xffff]!++;
    settle(j, hist1, (r, key) => {
      const list = lists[r]!;
      let c = 0;
      for (let i = 0; i < list.length; i++) c += +(list[i] === key);
      return c;
    });
  }
  if (prefixes.some((p) => p >= 0)) {
    // level 1 of every model still open, in one pass
    const level1 = await pool.run<TiesRawHistogramsResult>(
      'tiesRawHistograms',
      { ...inputs, level: 1, prefixes },
      ranges,
    );
    for (let j = 0; j < models; j++) {
      if (prefixes[j]! < 0) continue;
      settle(
        j,
        sumHistograms(level1.map((r) => r.hists[j]!)),
        (r, key) => level1[r]!.hists[j]![key & 0xffff]!,
      );
    }
  }
  const { weights, normalize, lambda, outRaw, outDtype } = options;
  await Promise.all(
    ranges.map((r, i) =>
      pool.run(
        'tiesMergeRaw',
        { ...inputs, keep: keep[i]!, weights: [...weights], normalize, lambda, outRaw, outDtype },
        [r],
      ),
    ),
  );
}

/** Elements sampled (at most) to predict where each model's threshold lies. */
const BAND_SAMPLE = 32768;

/**
 * The sample is taken in runs of this many neighbours (one cache line holds a run of bf16, where single
 * strided elements cost a line each). Neighbours share a row's scale, so the spread below counts a run
 * as half its length in independent draws.
 */
const SAMPLE_RUN = 8;

/** tiesThresholdBands' scratch, reused (it runs once per tensor on the calling thread). */
const sampleScratch = {
  values: [] as Float32Array[],
  bytes: new Uint8Array(0),
  delta: new Float32Array(0),
  hist: new Uint32Array(RADIX_BINS),
};

/**
 * Per model (null: none), a band of whole top-digit bins of |delta| keys that holds the k-th largest
 * with high probability, from an evenly spread sample of the tensor (runs of SAMPLE_RUN neighbours; the
 * bins of the sample's ranks of k +- 4 standard deviations of a sampled rank), and the fraction of the
 * sample in it. Only a prediction: a miss costs a level-1 pass, never a different result.
 */
export function tiesThresholdBands(
  raw: readonly Uint8Array[],
  dtypes: readonly FloatDType[],
  n: number,
  keep: readonly (number | null)[],
): (TiesBand | null)[] {
  const ks = keep.map((k) => (k === null || k >= n ? null : Math.max(0, k)));
  const size = Math.floor(Math.min(BAND_SAMPLE, Math.floor(n / 8)) / SAMPLE_RUN) * SAMPLE_RUN;
  if (size < 1024) return ks.map(() => null);
  const runs = size / SAMPLE_RUN;
  const stride = n / runs; // >= 64: the runs do not overlap
  const scratch = sampleScratch;
  if (scratch.delta.length < size) {
    scratch.delta = new Float32Array(size);
    scratch.values = [];
  }
  const values = raw.map((r, k) => {
    const dtype = dtypes[k]!;
    const width = DTYPE_SIZES[dtype];
    const out = (scratch.values[k] ??= new Float32Array(scratch.delta.length)).subarray(0, size);
    if (dtype === 'BF16' && r.byteOffset % 2 === 0) {
      // bf16 -> f32 is a shift: straight from the raw bytes, no copy
      gatherBf16(new Uint16Array(r.buffer, r.byteOffset, n), new Uint32Array(out.buffer, 0, size), stride);
      return out;
    }
    if (scratch.bytes.length < size * width) scratch.bytes = new Uint8Array(size * 8);
    const bytes = scratch.bytes.subarray(0, size * width);
    for (let s = 0; s < runs; s++) {
      const i = Math.floor(s * stride);
      bytes.set(r.subarray(i * width, (i + SAMPLE_RUN) * width), s * SAMPLE_RUN * width);
    }
    return decodeFloats(dtype, bytes, 'F32', out);
  });
  const base = values[0]!;
  const delta = scratch.delta.subarray(0, size);
  const keys = new Uint32Array(delta.buffer, 0, size);
  const hist = scratch.hist;
  return ks.map((k, j) => {
    if (k === null || k === 0) return null;
    sampleHistogram(values[j + 1]!, base, delta, keys, hist);
    const p = k / n;
    const rank = p * size;
    // 4 standard deviations of a sampled rank, the sample counted as size / 2 independent draws
    const spread = 4 * Math.sqrt(2 * size * p * (1 - p)) + 1;
    const high = Math.max(1, Math.floor(rank - spread));
    const low = Math.min(size, Math.ceil(rank + spread));
    const top = pickBin(hist, high).bin;
    const bottom = pickBin(hist, low).bin;
    let inBand = 0;
    for (let b = bottom; b <= Math.min(top, RADIX_BINS - 1); b++) inBand += hist[b]!;
    const fraction = inBand / size;
    if (fraction > 0.1) return null; // a band this wide (many equal keys): a level-1 pass is cheaper
    return { lo: bottom * 65536, hi: (Math.min(top, RADIX_BINS - 1) + 1) * 65536, fraction };
  });
}

/**
 * tiesMergeRawParallel's one-pass form (three bf16 models into bf16, every sparsified model with a
 * band): tiesMergeBanded on every range, the exact thresholds from the band keys collected, then
 * tiesFixup (tiesFixupRaw, from the packed inputs the kernel returned) on the elements left open.
 * Returns false (having reported the NaN/Inf) when a threshold lies outside its band or a range
 * overflowed: the caller then runs the three-pass form.
 */
async function tiesMergeBandedParallel(
  pool: WorkerPool,
  ranges: readonly IndexRange[],
  options: TiesMergeRawOptions,
  ks: readonly (number | null)[],
  bands: readonly (TiesBand | null)[],
): Promise<boolean> {
  const { normalize, lambda, outRaw, memory } = options;
  // what the banded pass and the fix-up both take
  const common: BandedCommon = {
    raw: [...options.raw],
    dtypes: [...options.dtypes],
    weights: [...options.weights],
    normalize,
    lambda,
    outRaw,
  };
  const rules: TiesBandRule[] = ks.map((k, j) =>
    k === null ? { kind: 'all' } : k === 0 ? { kind: 'none' } : { kind: 'band', ...bands[j]! },
  );
  const inPlace =
    memory !== undefined && memory.holds(outRaw) && options.raw.every((r) => memory.holds(r))
      ? { memory: memory.ref }
      : {};
  // the ranges' result buffers: this pool's, reused from the last tensor, unless another call holds them
  const cached = bandedBuffersByPool.get(pool);
  const held = cached !== undefined && !cached.busy ? cached : { busy: false, ranges: [] as BandedBuffers[] };
  if (cached === undefined) bandedBuffersByPool.set(pool, held);
  held.busy = true;
  try {
    const buffers = ranges.map(
      (r, i) => (held.ranges[i] = bandedBuffers(rules, r.end - r.start, held.ranges[i])),
    );
    const parts = await Promise.all(
      ranges.map(async (r, i) => {
        const [part] = await pool.run<TiesMergeBandedResult>(
          'tiesMergeBanded',
          { ...common, rules, buffers: buffers[i]!, ...inPlace },
          [r],
        );
        return part!;
      }),
    );
    options.onDecoded?.(parts.map((p) => p.first));
    return await resolveAndFixUp(pool, ranges, common, ks, rules, parts);
  } finally {
    held.busy = false;
  }
}

/** The inputs and merge parameters tiesMergeBandedParallel's banded pass and fix-up both take. */
type BandedCommon = Pick<
  TiesMergeBandedArgs,
  'raw' | 'dtypes' | 'weights' | 'normalize' | 'lambda' | 'outRaw'
>;

/** Per pool, the result buffers of tiesMergeBandedParallel's ranges, and whether a call is using them. */
const bandedBuffersByPool = new WeakMap<WorkerPool, { busy: boolean; ranges: BandedBuffers[] }>();

/**
 * tiesMergeBandedParallel after the banded pass: the exact thresholds from the band keys, then the
 * fix-up of the open elements. False when the pass's prediction missed (see there).
 */
async function resolveAndFixUp(
  pool: WorkerPool,
  ranges: readonly IndexRange[],
  common: BandedCommon,
  ks: readonly (number | null)[],
  rules: readonly TiesBandRule[],
  parts: readonly TiesMergeBandedResult[],
): Promise<boolean> {
  if (parts.some((p) => p.overflow)) return false;
  const keep: TiesKeep[][] = ranges.map(() => []); // per range, per model
  for (const [j, rule] of rules.entries()) {
    if (rule.kind !== 'band') {
      for (const rangeKeep of keep) rangeKeep.push(rule);
      continue;
    }
    const k = ks[j]!;
    const lists = parts.map((p) => p.keys[j]!);
    // the keys at or above the band (NaN included), and the band's keys per top-16-bit bin
    let above = 0;
    const bins = new Uint32Array(parts[0]!.bandBins[j]!.length);
    for (const p of parts) {
      above += p.above[j]!;
      const b = p.bandBins[j]!;
      for (let i = 0; i < bins.length; i++) bins[i]! += b[i]!;
    }
    let inBand = 0;
    for (let i = 0; i < bins.length; i++) inBand += bins[i]!;
    if (k <= above || k > above + inBand) return false; // the threshold is outside the band
    // radix select of the band keys: the top 16 bits, then the low 16 among the chosen top bin
    let rank = k - above;
    let topBin = bins.length - 1;
    let topAbove = 0;
    while (topAbove + bins[topBin]! < rank) topAbove += bins[topBin--]!;
    rank -= topAbove;
    const prefix = rule.lo / 65536 + topBin;
    const hist = new Uint32Array(RADIX_BINS);
    for (const list of lists) lowDigitHistogram(list, prefix, hist);
    const top = { bin: prefix, above: topAbove };
    const low = pickBin(hist, rank);
    const key = top.bin * 65536 + low.bin;
    const quota = k - (above + top.above + low.above);
    let before = 0;
    for (const [r, list] of lists.entries()) {
      keep[r]!.push({ kind: 'top', key, quota, equalBefore: before });
      before += countKey(list, key);
    }
  }
  await Promise.all(
    ranges.map((r, i) => {
      const { fix, packed } = parts[i]!;
      if (fix.length === 0) return Promise.resolve();
      return pool.run('tiesFixup', { ...common, keep: keep[i]!, fix, packed }, [
        { start: r.start, end: r.start + 1 },
      ]);
    }),
  );
  return true;
}

/** Adds to `hist` the low 16 bits of the keys of `list` whose top 16 bits are `prefix`. */
function lowDigitHistogram(list: Uint32Array, prefix: number, hist: Uint32Array): void {
  for (let i = 0; i < list.length; i++) {
    const key = list[i]!;
    if (key >>> 16 === prefix) hist[key & 0xffff]!++;
  }
}

/** How many entries of `list` equal `key`. */
function countKey(list: Uint32Array, key: number): number {
  let c = 0;
  for (let i = 0; i < list.length; i++) c += +(list[i] === key);
  return c;
}

/** The f32 bits of the bf16 runs of SAMPLE_RUN elements from src[floor(r * stride)], r = 0, 1, ... into dst. */
function gatherBf16(src: Uint16Array, dst: Uint32Array, stride: number): void {
  for (let r = 0, s = 0; s < dst.length; r++) {
    const i = Math.floor(r * stride);
    for (let e = 0; e < SAMPLE_RUN; e++) dst[s++] = src[i + e]! << 16;
  }
}

/** The task vector of the sample (in `delta`, viewed as `keys`) and its top-16-bit key histogram. */
function sampleHistogram(
  x: Float32Array,
  base: Float32Array,
  delta: Float32Array,
  keys: Uint32Array,
  hist: Uint32Array,
): void {
  for (let s = 0; s < delta.length; s++) delta[s] = x[s]! - base[s]!;
  hist.fill(0);
  for (let s = 0; s < keys.length; s++) hist[(keys[s]! & 0x7fffffff) >>> 16]!++;
}
