/**
 * TIES (magnitude top-k, sign election, disjoint merge) for a whole tensor straight from the raw bytes
 * of the base and the models, in three passes over those bytes instead of a decode pass, per model two
 * radix histogram passes and a zeroing pass, a merge pass and an encode pass (each a pool barrier):
 *
 *   1. tiesRawHistograms level 0: decode, task vectors, the first NaN/Inf per input, and per model the
 *      histogram of the top 16 bits of |delta|;
 *   2. tiesRawHistograms level 1, all models in one pass (only those whose threshold the first level
 *      did not settle): the histogram of the low 16 bits among the keys of the chosen top bin;
 *   3. tiesMergeRaw: decode, task vectors, each model's top-k kept (keepTopKBits: ties at the threshold
 *      by lowest index, the count of ties in earlier ranges given), tiesMerge, encode.
 *
 * The task vectors are never stored: every pass decodes them again chunk by chunk into worker-local
 * scratch (the raw bytes are a quarter to half the size of the f32 values). Every step is the kernel
 * it replaces (decodeDeltas' arithmetic, absDigitHistogram's keys, keepTopKRange, tiesMerge,
 * encodeFloats) on a chunk, so the bytes equal theirs. f32 compute only.
 */
import {
  DTYPE_SIZES,
  bf16ToF32Table,
  decodeFloats,
  encodeFloats,
  f32BitsToBf16Bits,
  findNonFinite,
  floatToBf16,
  type FloatDType,
} from '../dtypes.js';
import type { KernelMemoryRef } from './kernel-memory.js';
import { divisorTable, electedMean3, tiesMerge } from './masked-disjoint-mean.js';
import { RADIX_BINS, keepTopKBits } from './radix-select.js';

/** Elements per chunk: a chunk of every input and of the task vectors stays in the core's cache. */
const CHUNK = 8192;

interface RawInputs {
  /** The raw little-endian bytes of the base, then of each model, shared. */
  raw: Uint8Array[];
  dtypes: FloatDType[];
}

export interface TiesRawHistogramsArgs extends RawInputs {
  /** 0: the top 16 bits of |delta|'s f32 bits; 1: the low 16 bits among keys whose top 16 are the prefix. */
  level: 0 | 1;
  /** Per model: -1 skips it (no histogram), else (level 1) the chosen top 16 bits. */
  prefixes: number[];
  /**
   * Level 0, per model (optional): keys in [lo, hi) are also collected, in index order, up to
   * `fraction` * 1.25 of the range's length plus 4096 (the band a sample predicts the threshold in,
   * so that level 1 needs no pass of its own); null: none.
   */
  bands?: ({ lo: number; hi: number; fraction: number } | null)[];
}

export interface TiesRawHistogramsResult {
  /** Per model, its histogram over the range (an empty array for a skipped model). */
  hists: Uint32Array[];
  /** Level 0: per input (base first), the index of its first NaN/Inf in the range (-1: none); level 1: []. */
  first: number[];
  /** Per model with a band: its keys in the band, in index order, or null when more than fit. */
  bandKeys: (Uint32Array | null)[];
}

/**
 * One level of the radix select of every model's |delta| over [start, end) (absDigitHistogram of the
 * task vectors decodeDeltas would leave), decoding the raw bytes chunk by chunk. Level 0 also finds
 * each input's first NaN/Inf, on the decoded values as decodeDeltas does, and collects the keys in
 * each model's band.
 */
export function tiesRawHistograms(
  args: TiesRawHistogramsArgs,
  start: number,
  end: number,
): TiesRawHistogramsResult {
  const { level, prefixes } = args;
  const models = args.raw.length - 1;
  const hists = prefixes.map((p) => new Uint32Array(p < 0 ? 0 : RADIX_BINS));
  const first = level === 0 ? new Array<number>(models + 1).fill(-1) : [];
  const bands = level === 0 ? (args.bands ?? []) : [];
  const lists = prefixes.map((p, j) => {
    const band = bands[j];
    if (p < 0 || band === undefined || band === null) return null;
    return new Uint32Array(Math.ceil(band.fraction * 1.25 * (end - start)) + 4096);
  });
  const counts = new Array<number>(models).fill(0);
  if (level === 1 && prefixes.every((p) => p < 0)) return { hists, first, bandKeys: [] };
  const dec = new Decoder(args, level === 0 ? first : null);
  const d = new Float32Array(CHUNK);
  const u = new Uint32Array(d.buffer);
  for (let a = start; a < end; a += CHUNK) {
    const b = Math.min(end, a + CHUNK);
    const m = b - a;
    dec.base(a, b);
    for (let j = 0; j < models; j++) {
      const p = prefixes[j]!;
      if (p < 0 && level === 1) continue;
      dec.delta(j, a, b, d);
      if (p < 0) continue;
      const hist = hists[j]!;
      const list = lists[j]!;
      if (level === 1) {
        for (let i = 0; i < m; i++) {
          const key = u[i]! & 0x7fffffff;
          if (key >>> 16 === p) hist[key & 0xffff]!++;
        }
      } else if (list === null) {
        for (let i = 0; i < m; i++) hist[(u[i]! & 0x7fffffff) >>> 16]!++;
      } else {
        const { lo, hi } = bands[j]!;
        const width = hi - lo;
        const cap = list.length;
        let c = counts[j]!;
        for (let i = 0; i < m; i++) {
          const key = u[i]! & 0x7fffffff;
          hist[key >>> 16]!++;
          if ((key - lo) >>> 0 < width) {
            if (c < cap) list[c] = key;
            c++;
          }
        }
        counts[j] = c;
      }
    }
  }
  const bandKeys = lists.map((list, j) =>
    list === null || counts[j]! > list.length ? null : list.slice(0, counts[j]!),
  );
  return { hists, first, bandKeys };
}

/** What tiesMergeRaw keeps of one model's task vector. */
export type TiesKeep =
  | { readonly kind: 'all' }
  | { readonly kind: 'none' }
  /**
   * The top k by |delta|: keys (f32 bits, sign cleared) above `key`, and the first `quota` equal to it
   * in index order, `equalBefore` of which lie before this range (keepTopKRange's arguments).
   */
  | { readonly kind: 'top'; readonly key: number; readonly quota: number; readonly equalBefore: number };

export interface TiesMergeRawArgs extends RawInputs {
  /** Per model. */
  keep: TiesKeep[];
  weights: number[];
  normalize: boolean;
  lambda: number;
  /** Written: the merged tensor encoded as `outDtype` (element i at byte i * size), shared. */
  outRaw: Uint8Array;
  outDtype: FloatDType;
}

/**
 * TIES over [start, end) from raw bytes to raw bytes: decodeDeltas, keepTopKRange per model, tiesMerge
 * and encodeFloats, chunk by chunk in worker-local scratch.
 */
export function tiesMergeRaw(args: TiesMergeRawArgs, start: number, end: number): void {
  const { keep, weights, normalize, lambda, outDtype } = args;
  const models = args.raw.length - 1;
  if (
    models === 3 &&
    outDtype === 'BF16' &&
    args.outRaw.byteOffset % 2 === 0 &&
    args.dtypes.every((d) => d === 'BF16') &&
    args.raw.every((r) => r.byteOffset % 2 === 0)
  ) {
    tiesMergeRaw3Bf16(args, start, end);
    return;
  }
  const dec = new Decoder(args, null);
  const deltas = Array.from({ length: models }, () => new Float32Array(CHUNK));
  const bits = deltas.map((d) => new Uint32Array(d.buffer));
  const seen = keep.map((k) => (k.kind === 'top' ? k.equalBefore : 0));
  const merged = new Float32Array(CHUNK);
  const size = DTYPE_SIZES[outDtype];
  for (let a = start; a < end; a += CHUNK) {
    const b = Math.min(end, a + CHUNK);
    const m = b - a;
    dec.base(a, b);
    for (let j = 0; j < models; j++) {
      const k = keep[j]!;
      const d = deltas[j]!;
      if (k.kind === 'none') {
        d.fill(0, 0, m);
        continue;
      }
      dec.delta(j, a, b, d);
      if (k.kind === 'top') seen[j] = keepTopKBits(bits[j]!, k.key, k.quota, seen[j]!, 0, m);
    }
    tiesMerge({ out: merged, base: dec.baseValues, deltas, weights, normalize, lambda }, 0, m);
    encodeFloats(outDtype, merged.subarray(0, m), args.outRaw.subarray(a * size, b * size));
  }
}

/**
 * tiesMergeRaw for three models, bf16 in and out (the common case), in one loop per chunk with no
 * array of task vectors: each delta rounded to f32 as decodeDeltas stores it; kept when its |value| is
 * above the threshold's (for non-NaN values the order of the keys) or equal to it within the quota --
 * keepTopKBits' test in the float domain, where a NaN is never kept nor counted; a dropped delta is
 * multiplied by 0; then tiesMerge3F32's arithmetic and floatToBf16. A dropped non-finite delta makes
 * the result NaN; such an element (and any NaN result) is computed again from the exactly zeroed
 * deltas, as tiesMerge3F32 does, so the bytes are those of the chunked composition.
 */
function tiesMergeRaw3Bf16(args: TiesMergeRawArgs, start: number, end: number): void {
  const [hb, h0, h1, h2] = args.raw.map(
    (r) => new Uint16Array(r.buffer, r.byteOffset, r.byteLength >>> 1),
  ) as [Uint16Array, Uint16Array, Uint16Array, Uint16Array];
  const outBits = new Uint16Array(args.outRaw.buffer, args.outRaw.byteOffset, args.outRaw.byteLength >>> 1);
  const table = bf16ToF32Table();
  const ties = new KeptTies3(args.weights, args.keep, args.normalize, args.lambda);
  const [t0, t1, t2] = args.keep.map(thresholdValue) as [number, number, number];
  const quota = args.keep.map((k) => (k.kind === 'top' ? k.quota : 0)) as [number, number, number];
  const seen = args.keep.map((k) => (k.kind === 'top' ? k.equalBefore : 0)) as [number, number, number];
  const merged = new Float32Array(CHUNK);
  for (let a = start; a < end; a += CHUNK) {
    const m = Math.min(end, a + CHUNK) - a;
    for (let i = 0; i < m; i++) {
      const x = a + i;
      const b = table[hb[x]!]!;
      const d0 = Math.fround(table[h0[x]!]! - b);
      const d1 = Math.fround(table[h1[x]!]! - b);
      const d2 = Math.fround(table[h2[x]!]! - b);
      const e0 = Math.abs(d0);
      const e1 = Math.abs(d1);
      const e2 = Math.abs(d2);
      let k0 = +(e0 > t0);
      let k1 = +(e1 > t1);
      let k2 = +(e2 > t2);
      // ties with a threshold (rare): the first `quota` of them in index order
      if (e0 === t0) k0 = +(seen[0]++ < quota[0]);
      if (e1 === t1) k1 = +(seen[1]++ < quota[1]);
      if (e2 === t2) k2 = +(seen[2]++ < quota[2]);
      merged[i] = ties.merge(b, d0, d1, d2, k0, k1, k2);
    }
    floatToBf16(merged.subarray(0, m), outBits.subarray(a, a + m));
  }
}

/** How tiesMergeBanded treats one model's task vector. */
export type TiesBandRule =
  | { readonly kind: 'all' }
  | { readonly kind: 'none' }
  /**
   * The threshold key is taken to lie in [lo, hi) (a sample's prediction): keys >= hi are kept, keys
   * below lo dropped, and the entries in between (and NaN) are left to tiesFixupRaw. Up to
   * `fraction` * 1.25 of the range's length plus 4096 of them are collected.
   */
  | { readonly kind: 'band'; readonly lo: number; readonly hi: number; readonly fraction: number };

export interface TiesMergeBandedArgs extends RawInputs {
  /** Per model (three models, bf16 in and out). */
  rules: TiesBandRule[];
  weights: number[];
  normalize: boolean;
  lambda: number;
  /** Written: the merged tensor as bf16, final except at the indices returned in `fix`. */
  outRaw: Uint8Array;
  /**
   * Optional, shared: where the range's open entries go (bandedBuffers; the caller reuses them across
   * tensors, so their pages are not zeroed and faulted in afresh each time). Allocated when absent.
   */
  buffers?: BandedBuffers;
  /**
   * Optional: the shared WebAssembly memory (KernelMemory) that `raw` and `outRaw` are views of; the
   * WebAssembly kernel then reads and writes them where they lie instead of copying each block.
   */
  memory?: KernelMemoryRef;
}

/** Where tiesMergeBanded puts a range's open entries (shared: they go back to the caller as its result). */
export interface BandedBuffers {
  /** Per model with a band: its open entries. */
  readonly lists: readonly [Uint32Array | null, Uint32Array | null, Uint32Array | null];
  /** The open elements' indices, and their packed inputs (TiesMergeBandedResult's fix and packed). */
  readonly fix: Uint32Array;
  readonly packed: readonly [Uint32Array, Uint32Array];
}

/**
 * Buffers for tiesMergeBanded over `len` elements under `rules`: each list room for its band's sampled
 * fraction of the range and a quarter more, `fix` for all of them. `reuse`'s arrays are kept where they
 * are long enough (a longer list only overflows later; the result is the same).
 */
export function bandedBuffers(
  rules: readonly TiesBandRule[],
  len: number,
  reuse?: BandedBuffers,
): BandedBuffers {
  const shared = (count: number, old: Uint32Array | null | undefined) =>
    old !== null && old !== undefined && old.length >= count
      ? old
      : new Uint32Array(new SharedArrayBuffer(4 * count));
  const lengths = rules.map((r) => (r.kind === 'band' ? Math.ceil(r.fraction * 1.25 * len) + 4096 : 0));
  const lists = rules.map((r, j) => (r.kind === 'band' ? shared(lengths[j]!, reuse?.lists[j]) : null)) as [
    Uint32Array | null,
    Uint32Array | null,
    Uint32Array | null,
  ];
  const fixes = lengths.reduce((sum, l) => sum + l, 4096);
  return {
    lists,
    fix: shared(fixes, reuse?.fix),
    packed: [shared(fixes, reuse?.packed[0]), shared(fixes, reuse?.packed[1])],
  };
}

export interface TiesMergeBandedResult {
  /** Per model: how many keys of the range are >= its band's hi (NaN included). */
  above: number[];
  /** Per model with a band: the keys of its entries left open, in index order (NaN ones included); shared. */
  keys: (Uint32Array | null)[];
  /** Per model with a band: how many of those keys fall in each top-16-bit bin of the band (lo first). */
  bandBins: (Uint32Array | null)[];
  /** The indices of the elements with an entry left open (or a non-finite one), ascending; shared. */
  fix: Uint32Array;
  /**
   * At those elements, the four inputs' bf16 bits two per entry: [base | model 0 << 16, model 1 |
   * model 2 << 16] (tiesFixupRaw's `packed`, so it need not read the raw bytes again); shared.
   */
  packed: Uint32Array[];
  /** More entries were left open than fit: nothing of this result may be used. */
  overflow: boolean;
  /** Per input (base first), the index of its first NaN/Inf in the range (-1: none). */
  first: number[];
}

/**
 * TIES of three bf16 models into bf16 in ONE pass over the raw bytes, before the thresholds are known:
 * per model, an entry whose key is at or above its band is kept, one below is dropped, and one inside
 * the band (where the threshold lies, if the sample did not mislead) leaves its element open. Every
 * decided element gets tiesMergeRaw's bytes; the open ones are recomputed by tiesFixupRaw once the
 * band's collected keys have given the exact thresholds (or, when the threshold is outside a band or
 * the lists overflow, the caller runs the three-pass path instead).
 *
 * The scalar JS form: the reference of the WebAssembly SIMD kernel (ties-banded-wasm.ts, which the pool
 * runs by default) and its fallback.
 */
export function tiesMergeBandedJs(
  args: TiesMergeBandedArgs,
  start: number,
  end: number,
): TiesMergeBandedResult {
  const run = bandedRun(args, start, end);
  for (let a = start; a < end; a += CHUNK) bandedChunk(run, a, Math.min(end, a + CHUNK) - a);
  return bandedResult(run);
}

/** tiesMergeBanded's state over one range: inputs, parameters, lists, and the counts so far. */
export interface BandedRun {
  readonly hb: Uint16Array;
  readonly h0: Uint16Array;
  readonly h1: Uint16Array;
  readonly h2: Uint16Array;
  readonly outBits: Uint16Array;
  readonly table: Float32Array;
  readonly rules: TiesBandRule[];
  /** The arithmetic of a decided element (weights, normalize, lambda; 'all' rules keep NaN deltas). */
  readonly ties: KeptTies3;
  /** Per model: kept when |d| >= hi, open unless |d| < lo (NaN: open). */
  readonly lo: readonly [number, number, number];
  readonly hi: readonly [number, number, number];
  /** Per model with a band: its open entries (f32 bits until bandedResult makes them keys), shared. */
  readonly lists: readonly [Uint32Array | null, Uint32Array | null, Uint32Array | null];
  /** The same buffers as floats (empty for a model without a band). */
  readonly opens: readonly [Float32Array, Float32Array, Float32Array];
  /** Open entries so far per model (may pass the list's length: overflow). */
  readonly counts: [number, number, number];
  readonly fix: Uint32Array;
  /** Per entry of fix: the inputs' bf16 bits, packed as in the result (shared, fix's length each). */
  readonly packed: readonly [Uint32Array, Uint32Array];
  /** Open elements so far (may pass fix's length: overflow). */
  fixed: number;
  /** Per model, entries so far with |d| >= hi. */
  readonly above: [number, number, number];
  /** Per input (base first), the index of its first NaN/Inf (-1: none so far). */
  readonly first: number[];
  /** Scratch: one chunk's merged values. */
  readonly merged: Float32Array;
}

/** A fresh BandedRun over [start, end): lists sized for the range, counts zero. */
export function bandedRun(args: TiesMergeBandedArgs, start: number, end: number): BandedRun {
  const { rules } = args;
  const [hb, h0, h1, h2] = args.raw.map(
    (r) => new Uint16Array(r.buffer, r.byteOffset, r.byteLength >>> 1),
  ) as [Uint16Array, Uint16Array, Uint16Array, Uint16Array];
  const floats = rules.map((r) => {
    if (r.kind === 'all') return { lo: -1, hi: -1 };
    if (r.kind === 'none') return { lo: Infinity, hi: NaN };
    return { lo: keyFloat(r.lo), hi: keyFloat(r.hi) };
  });
  // shared, so the results go back to the caller (and the fix-up) without a copy
  const { lists, fix, packed } = args.buffers ?? bandedBuffers(rules, end - start);
  // the open deltas are stored as floats (their keys are taken after the loop, without a round trip
  // through memory per entry inside it)
  const opens = lists.map((l) => new Float32Array(l?.buffer ?? new ArrayBuffer(0))) as [
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  return {
    hb,
    h0,
    h1,
    h2,
    outBits: new Uint16Array(args.outRaw.buffer, args.outRaw.byteOffset, args.outRaw.byteLength >>> 1),
    table: bf16ToF32Table(),
    rules,
    ties: new KeptTies3(args.weights, rules, args.normalize, args.lambda),
    lo: floats.map((f) => f.lo) as [number, number, number],
    hi: floats.map((f) => f.hi) as [number, number, number],
    lists,
    opens,
    counts: [0, 0, 0],
    fix,
    packed,
    fixed: 0,
    above: [0, 0, 0],
    first: [-1, -1, -1, -1],
    merged: new Float32Array(CHUNK),
  };
}

/** tiesMergeBanded's work on the m <= CHUNK elements from index a, added to `run`. */
export function bandedChunk(run: BandedRun, a: number, m: number): void {
  const { hb, h0, h1, h2, table, ties, fix, merged } = run;
  const [p01, p23] = run.packed;
  const [lo0, lo1, lo2] = run.lo;
  const [hi0, hi1, hi2] = run.hi;
  const [list0, list1, list2] = run.lists;
  const [open0, open1, open2] = run.opens;
  let [n0, n1, n2] = run.counts;
  let [above0, above1, above2] = run.above;
  let fixed = run.fixed;
  let fb = 0;
  let f0 = 0;
  let f1 = 0;
  let f2 = 0;
  for (let i = 0; i < m; i++) {
    const x = a + i;
    const xb = hb[x]!;
    const x0 = h0[x]!;
    const x1 = h1[x]!;
    const x2 = h2[x]!;
    fb |= (xb & 0x7f80) + 0x80;
    f0 |= (x0 & 0x7f80) + 0x80;
    f1 |= (x1 & 0x7f80) + 0x80;
    f2 |= (x2 & 0x7f80) + 0x80;
    const b = table[xb]!;
    const d0 = Math.fround(table[x0]! - b);
    const d1 = Math.fround(table[x1]! - b);
    const d2 = Math.fround(table[x2]! - b);
    const e0 = Math.abs(d0);
    const e1 = Math.abs(d1);
    const e2 = Math.abs(d2);
    const k0 = +(e0 >= hi0);
    const k1 = +(e1 >= hi1);
    const k2 = +(e2 >= hi2);
    above0 += k0;
    above1 += k1;
    above2 += k2;
    const o0 = +!(e0 < lo0) & (k0 ^ 1);
    const o1 = +!(e1 < lo1) & (k1 ^ 1);
    const o2 = +!(e2 < lo2) & (k2 ^ 1);
    if ((o0 | o1 | o2) !== 0) {
      // an open element (rare): its keys for the bands, its index for the fix-up
      if (fixed < fix.length) {
        fix[fixed] = x;
        p01[fixed] = xb | (x0 << 16);
        p23[fixed] = x1 | (x2 << 16);
      }
      fixed++;
      if (o0 !== 0 && list0 !== null) {
        if (n0 < list0.length) open0[n0] = d0;
        n0++;
      }
      if (o1 !== 0 && list1 !== null) {
        if (n1 < list1.length) open1[n1] = d1;
        n1++;
      }
      if (o2 !== 0 && list2 !== null) {
        if (n2 < list2.length) open2[n2] = d2;
        n2++;
      }
    }
    merged[i] = ties.merge(b, d0, d1, d2, k0, k1, k2);
  }
  floatToBf16(merged.subarray(0, m), run.outBits.subarray(a, a + m));
  run.counts[0] = n0;
  run.counts[1] = n1;
  run.counts[2] = n2;
  run.above[0] = above0;
  run.above[1] = above1;
  run.above[2] = above2;
  run.fixed = fixed;
  const flags = [fb, f0, f1, f2];
  const bits = [hb, h0, h1, h2];
  const first = run.first;
  for (let k = 0; k < 4; k++) {
    if ((flags[k]! & 0x8000) === 0 || first[k]! >= 0) continue;
    const h = bits[k]!;
    for (let x = a; x < a + m; x++)
      if ((h[x]! & 0x7f80) === 0x7f80) {
        first[k] = x;
        break;
      }
  }
}

/** The result of a BandedRun whose range is done (the lists' entries become keys, in place). */
export function bandedResult(run: BandedRun): TiesMergeBandedResult {
  const { lists, counts, fix, fixed, rules } = run;
  const overflow = fixed > fix.length || lists.some((l, j) => l !== null && counts[j]! > l.length);
  const bandBins = rules.map((r, j) => {
    const list = lists[j];
    if (r.kind !== 'band' || list === null || list === undefined || overflow) return null;
    return bandBinsOf(list, counts[j]!, r.lo, r.hi);
  });
  return {
    above: run.above.map((a, j) => a + (bandBins[j]?.beyond ?? 0)),
    keys: lists.map((l, j) => (l === null || overflow ? null : l.subarray(0, counts[j]!))),
    bandBins: bandBins.map((b) => b?.bins ?? null),
    fix: overflow ? new Uint32Array(0) : fix.subarray(0, fixed),
    packed: overflow ? [] : run.packed.map((v) => v.subarray(0, fixed)),
    overflow,
    first: run.first,
  };
}

/**
 * Turns the first `count` entries of `list` (f32 bit patterns) into keys (sign cleared), in place, and
 * counts them per top-16-bit bin of [lo, hi) (`bins`, lo's bin first) and at or above hi (`beyond`).
 */
function bandBinsOf(
  list: Uint32Array,
  count: number,
  lo: number,
  hi: number,
): { bins: Uint32Array; beyond: number } {
  const first = lo / 65536;
  const bins = new Uint32Array(hi / 65536 - first);
  let beyond = 0;
  for (let i = 0; i < count; i++) {
    const key = list[i]! & 0x7fffffff;
    list[i] = key;
    if (key >= hi) beyond++;
    else bins[(key >>> 16) - first]!++;
  }
  return { bins, beyond };
}

export interface TiesFixupRawArgs extends RawInputs {
  /** Per model, its exact rule for this range. */
  keep: TiesKeep[];
  weights: number[];
  normalize: boolean;
  lambda: number;
  /** The (absolute, ascending) indices to compute, shared. */
  fix: Uint32Array;
  /**
   * Optional, shared: at the listed indices, the inputs' bf16 bits as tiesMergeBanded's `packed`
   * (so the raw bytes need not be read again); without them they are read from `raw`.
   */
  packed?: Uint32Array[];
  /** Written at those indices: tiesMergeRaw's bf16 bytes. */
  outRaw: Uint8Array;
}

/**
 * tiesMergeRaw (three bf16 models into bf16) at the listed indices only: the open elements of
 * tiesMergeBanded, once the thresholds are known. The listed indices must hold every entry equal to a
 * threshold key in the range, so the ties are counted in index order from `equalBefore`. Per element,
 * as tiesMergeRaw3Bf16 does it: keepTopKBits' test in the float domain (above the threshold's value, or
 * equal to it within the quota; a NaN is never kept nor counted; 'all' keeps it), a dropped delta
 * multiplied by 0, electedMean3 (a NaN result computed again from exactly zeroed deltas by
 * tiesOneExact), floatToBf16. Returns, per model, the ties counted (`equalBefore` plus those among the
 * listed elements; 0 for 'all' and 'none'). ties-banded-wasm.ts's tiesFixup runs it in WebAssembly
 * when given `packed`.
 */
export function tiesFixupRaw(args: TiesFixupRawArgs): number[] {
  const { keep, fix } = args;
  const outBits = new Uint16Array(args.outRaw.buffer, args.outRaw.byteOffset, args.outRaw.byteLength >>> 1);
  const table = bf16ToF32Table();
  const ties = new KeptTies3(args.weights, keep, args.normalize, args.lambda);
  const [t0, t1, t2] = keep.map(thresholdValue) as [number, number, number];
  const [q0, q1, q2] = keep.map((k) => (k.kind === 'top' ? k.quota : 0)) as [number, number, number];
  let [s0, s1, s2] = keep.map((k) => (k.kind === 'top' ? k.equalBefore : 0)) as [number, number, number];
  const merged = new Float32Array(Math.min(CHUNK, fix.length));
  const mergedBits = new Uint32Array(merged.buffer);
  const given = args.packed;
  const scratch = given === undefined ? [0, 1].map(() => new Uint32Array(merged.length)) : null;
  for (let a = 0; a < fix.length; a += CHUNK) {
    const m = Math.min(fix.length, a + CHUNK) - a;
    // this chunk's packed inputs, from index `at` on
    const [p01, p23] = (scratch ?? given!) as [Uint32Array, Uint32Array];
    let at = a;
    if (scratch !== null) {
      packOpen(args.raw, fix, a, m, p01, p23);
      at = 0;
    }
    for (let i = 0; i < m; i++, at++) {
      const x01 = p01[at]!;
      const x23 = p23[at]!;
      const b = table[x01 & 0xffff]!;
      const d0 = Math.fround(table[x01 >>> 16]! - b);
      const d1 = Math.fround(table[x23 & 0xffff]! - b);
      const d2 = Math.fround(table[x23 >>> 16]! - b);
      const e0 = Math.abs(d0);
      const e1 = Math.abs(d1);
      const e2 = Math.abs(d2);
      // no branch on the (unpredictable) comparisons with the thresholds; ties with a threshold
      // (rare): the first `quota` of them in index order
      let k0 = +(e0 > t0);
      let k1 = +(e1 > t1);
      let k2 = +(e2 > t2);
      if (e0 === t0) k0 = +(s0++ < q0);
      if (e1 === t1) k1 = +(s1++ < q1);
      if (e2 === t2) k2 = +(s2++ < q2);
      merged[i] = ties.merge(b, d0, d1, d2, k0, k1, k2);
    }
    for (let i = 0; i < m; i++) outBits[fix[a + i]!] = f32BitsToBf16Bits(mergedBits[i]!);
  }
  return [s0, s1, s2];
}

/** The inputs' bf16 bits at fix[a + i], for i < m, packed as tiesMergeBanded's `packed` at i. */
function packOpen(
  raw: Uint8Array[],
  fix: Uint32Array,
  a: number,
  m: number,
  p01: Uint32Array,
  p23: Uint32Array,
): void {
  const [hb, h0, h1, h2] = raw.map((r) => new Uint16Array(r.buffer, r.byteOffset, r.byteLength >>> 1)) as [
    Uint16Array,
    Uint16Array,
    Uint16Array,
    Uint16Array,
  ];
  for (let i = 0; i < m; i++) {
    const x = fix[a + i]!;
    p01[i] = hb[x]! | (h0[x]! << 16);
    p23[i] = h1[x]! | (h2[x]! << 16);
  }
}

/** The float whose f32 bits are `key` (0 <= key <= 0x80000000, a multiple of 65 536 or not); NaN above +Inf. */
function keyFloat(key: number): number {
  if (key > 0x7f800000) return NaN;
  return new Float32Array(new Uint32Array([key]).buffer)[0]!;
}

/**
 * The threshold of a keep rule as a float compared with |delta| (keepTopKBits' key test for non-NaN
 * values): 'all' and key -1 -> -1 (every non-NaN value is above), 'none' and NaN keys -> NaN (nothing
 * is above or equal), else the key's float. 'all' keeps NaN too: not covered here (see the caller).
 */
export function thresholdValue(k: TiesKeep): number {
  if (k.kind === 'all') return -1;
  if (k.kind === 'none' || k.key > 0x7f800000) return NaN;
  if (k.key < 0) return -1;
  return new Float32Array(new Uint32Array([k.key]).buffer)[0]!;
}

/**
 * TIES of one element of three models from its deltas and the keep flags (0 / 1) of each, as
 * tiesMerge3F32 computes it on the deltas keepTopKBits' zeroing would leave: a dropped delta is
 * multiplied by 0 (a signed zero adds nothing to the sums, which start at +0), and where that gives NaN
 * (a dropped non-finite delta, or a kept one) the element is computed again from exactly zeroed deltas.
 * An 'all' rule keeps a NaN delta too (its flag is 0 for NaN).
 */
class KeptTies3 {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  private readonly dens: Float64Array;
  private readonly all0: boolean;
  private readonly all1: boolean;
  private readonly all2: boolean;

  constructor(
    weights: readonly number[],
    rules: readonly { readonly kind: string }[],
    readonly normalize: boolean,
    readonly lambda: number,
  ) {
    [this.w0, this.w1, this.w2] = weights as [number, number, number];
    this.dens = divisorTable(this.w0, this.w1, this.w2);
    [this.all0, this.all1, this.all2] = rules.map((r) => r.kind === 'all') as [boolean, boolean, boolean];
  }

  merge(b: number, d0: number, d1: number, d2: number, k0: number, k1: number, k2: number): number {
    const r = electedMean3(
      this.w0 * (d0 * k0),
      this.w1 * (d1 * k1),
      this.w2 * (d2 * k2),
      this.dens,
      this.normalize,
    );
    if (r === r) return b + (0 + this.lambda * r);
    return tiesOneExact(
      b,
      k0 || this.all0 ? d0 : 0,
      k1 || this.all1 ? d1 : 0,
      k2 || this.all2 ? d2 : 0,
      this.w0,
      this.w1,
      this.w2,
      this.dens,
      this.normalize,
      this.lambda,
    );
  }
}

/** tiesMerge3F32 on one element whose dropped deltas are exactly +0 (its NaN fallback included). */
function tiesOneExact(
  base: number,
  d0: number,
  d1: number,
  d2: number,
  w0: number,
  w1: number,
  w2: number,
  dens: Float64Array,
  normalize: boolean,
  lambda: number,
): number {
  const a0 = w0 * d0;
  const a1 = w1 * d1;
  const a2 = w2 * d2;
  const r = electedMean3(a0, a1, a2, dens, normalize);
  if (r === r) return base + (0 + lambda * r);
  // tiesMergeOne
  const ds = [d0, d1, d2];
  const ws = [w0, w1, w2];
  let s = 0;
  for (let j = 0; j < 3; j++) s += ws[j]! * ds[j]!;
  const positive = s >= 0;
  let sum = 0;
  let den = 0;
  for (let j = 0; j < 3; j++) {
    const wd = ws[j]! * ds[j]!;
    if (positive ? wd > 0 : wd < 0) {
      sum += wd;
      den += ws[j]!;
    }
  }
  const mixed = normalize ? sum / (den === 0 ? 1 : den) : sum;
  return base + (0 + lambda * Math.fround(mixed));
}

/**
 * Chunk decoding of the base and the task vectors as decodeDeltas computes them: the base's values,
 * then each model's decoded value minus the base's, stored in f32. With `first`, records each input's
 * first NaN/Inf (on its decoded values).
 */
class Decoder {
  /** The base's values of the current chunk (index 0 = the chunk's first element). */
  readonly baseValues = new Float32Array(CHUNK);
  private readonly baseBits = new Uint32Array(this.baseValues.buffer);
  private readonly values = new Float32Array(CHUNK);
  private readonly bf16: (Uint16Array | null)[];
  private readonly table = bf16ToF32Table();

  constructor(
    private readonly inputs: RawInputs,
    private readonly first: number[] | null,
  ) {
    this.bf16 = inputs.raw.map((r, k) =>
      inputs.dtypes[k] === 'BF16' && r.byteOffset % 2 === 0
        ? new Uint16Array(r.buffer, r.byteOffset, r.byteLength >>> 1)
        : null,
    );
  }

  /** Decodes [a, b) of the base into baseValues. */
  base(a: number, b: number): void {
    const h = this.bf16[0]!;
    const m = b - a;
    if (h !== null) {
      const dst = this.baseBits;
      let flags = 0;
      for (let i = 0; i < m; i++) {
        const x = h[a + i]!;
        flags |= (x & 0x7f80) + 0x80;
        dst[i] = x << 16;
      }
      if ((flags & 0x8000) !== 0) this.note(0, a, this.baseValues.subarray(0, m));
      return;
    }
    const values = this.decode(0, a, b, this.baseValues);
    this.note(0, a, values);
  }

  /** Writes model j's task vector over [a, b) into d[0, b - a). */
  delta(j: number, a: number, b: number, d: Float32Array): void {
    const base = this.baseValues;
    const m = b - a;
    const h = this.bf16[j + 1]!;
    if (h !== null) {
      const table = this.table;
      let flags = 0;
      for (let i = 0; i < m; i++) {
        const x = h[a + i]!;
        flags |= (x & 0x7f80) + 0x80;
        d[i] = table[x]! - base[i]!;
      }
      if ((flags & 0x8000) !== 0 && this.first !== null && this.first[j + 1]! < 0) {
        for (let i = 0; i < m; i++)
          if ((h[a + i]! & 0x7f80) === 0x7f80) {
            this.first[j + 1] = a + i;
            break;
          }
      }
      return;
    }
    const values = this.decode(j + 1, a, b, this.values);
    this.note(j + 1, a, values);
    for (let i = 0; i < m; i++) d[i] = values[i]! - base[i]!;
  }

  private decode(k: number, a: number, b: number, into: Float32Array): Float32Array {
    const dtype = this.inputs.dtypes[k]!;
    const size = DTYPE_SIZES[dtype];
    const bytes = this.inputs.raw[k]!.subarray(a * size, b * size);
    return decodeFloats(dtype, bytes, 'F32', into.subarray(0, b - a)) as Float32Array;
  }

  private note(k: number, a: number, values: Float32Array): void {
    if (this.first === null || this.first[k]! >= 0) return;
    const i = findNonFinite('F32', values);
    if (i >= 0) this.first[k] = a + i;
  }
}
