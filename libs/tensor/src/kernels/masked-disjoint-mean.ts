import type { FloatArray } from './float-array.js';

export interface MaskedDisjointMeanArgs {
  /** Written: the merged delta (see below). */
  out: FloatArray;
  deltas: FloatArray[];
  weights: number[];
  /** The elected sign per element (+1 / -1), from signVote. */
  sign: Int8Array;
  /** Divide by the sum of the agreeing models' weights (0 counts as 1). */
  normalize: boolean;
}

/**
 * TIES disjoint merge over [start, end): with wd_k = w_k * d_k[i], the entries whose sign equals the
 * elected sign (a zero never agrees) give out[i] = sum wd_k, divided by sum w_k over those entries
 * when `normalize` (a zero divisor becomes 1), as mergekit's get_mask + divisor.
 */
export function maskedDisjointMean(args: MaskedDisjointMeanArgs, start: number, end: number): void {
  const { out, deltas, weights, sign, normalize } = args;
  const k = deltas.length;
  for (let i = start; i < end; i++) {
    const s = sign[i]!;
    let num = 0;
    let den = 0;
    for (let j = 0; j < k; j++) {
      const wd = weights[j]! * deltas[j]![i]!;
      if ((s > 0 && wd > 0) || (s < 0 && wd < 0)) {
        num += wd;
        den += weights[j]!;
      }
    }
    out[i] = normalize ? num / (den === 0 ? 1 : den) : num;
  }
}

export interface TiesMergeArgs {
  /** Written: base[i] + lambda * (the disjoint mean of the deltas at i, rounded to out's element type). */
  out: FloatArray;
  base: FloatArray;
  deltas: FloatArray[];
  weights: number[];
  normalize: boolean;
  /** Multiplies the merged delta before the base is added. */
  lambda: number;
  /**
   * Per model, a factor each delta is multiplied by first, rounded to out's element type -- the values
   * applyMask(delta, keep, scale) would leave in a delta array whose dropped entries are already 0
   * (DARE's rescale, fused here instead of a pass of its own); default 1 (no change).
   */
  scales?: number[];
}

/**
 * signVote, maskedDisjointMean and the base offset fused into one pass over [start, end), with no sign
 * or merged-delta array: the elected sign of sum_k w_k d_k[i] (>= 0 positive), the agreeing entries'
 * sum (/ their weights when `normalize`) rounded to out's element type, then out[i] = base[i] + lambda
 * times it -- the same values as the three kernels run one after another. `out` may alias `base`.
 */
export function tiesMerge(args: TiesMergeArgs, start: number, end: number): void {
  const { out, base, deltas, weights, normalize, lambda } = args;
  const k = deltas.length;
  const f32 = out instanceof Float32Array;
  if (k === 3 && f32) {
    tiesMerge3F32(args, start, end);
    return;
  }
  if (args.scales !== undefined) {
    for (let i = start; i < end; i++) tiesMergeOne(args, i);
    return;
  }
  for (let i = start; i < end; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += weights[j]! * deltas[j]![i]!;
    const positive = s >= 0;
    let num = 0;
    let den = 0;
    for (let j = 0; j < k; j++) {
      const wd = weights[j]! * deltas[j]![i]!;
      if (positive ? wd > 0 : wd < 0) {
        num += wd;
        den += weights[j]!;
      }
    }
    let m = normalize ? num / (den === 0 ? 1 : den) : num;
    if (f32) m = Math.fround(m);
    out[i] = base[i]! + (0 + lambda * m);
  }
}

/**
 * tiesMerge for three models in f32 (the common case), unrolled and without a data-dependent branch:
 * agreeing entries are selected by 0/1 factors. A dropped entry adds a signed zero, which leaves every
 * non-zero sum unchanged and a zero sum +0 (sums start at +0), so the result is the same as summing the
 * agreeing entries alone; a NaN (an infinite delta times 0) falls back to the branching form. The
 * divisor is one of 8 sums of weights, picked by the agreement bits from a table computed with the same
 * expression (0 -> 1), and the elected sign is a factor +1 / -1, so the loop has no branch on the data.
 */
function tiesMerge3F32(args: TiesMergeArgs, start: number, end: number): void {
  const { out, base, normalize, lambda } = args;
  const [d0, d1, d2] = args.deltas as [FloatArray, FloatArray, FloatArray];
  const [w0, w1, w2] = args.weights as [number, number, number];
  const [s0, s1, s2] = (args.scales ?? [1, 1, 1]) as [number, number, number];
  const scaled = args.scales !== undefined;
  const dens = divisorTable(w0, w1, w2);
  for (let i = start; i < end; i++) {
    // the scaled delta, rounded to f32 as applyMask would store it (skipped when there is no scale)
    const a0 = w0 * (scaled ? Math.fround(d0[i]! * s0) : d0[i]!);
    const a1 = w1 * (scaled ? Math.fround(d1[i]! * s1) : d1[i]!);
    const a2 = w2 * (scaled ? Math.fround(d2[i]! * s2) : d2[i]!);
    const m = electedMean3(a0, a1, a2, dens, normalize);
    if (m !== m) tiesMergeOne(args, i);
    else out[i] = base[i]! + (0 + lambda * m);
  }
}

/**
 * TIES of three weighted deltas a_k = w_k * d_k with no branch on the data: the elected sign as a
 * factor +1 / -1, the sum of the agreeing entries, divided (normalize) by the divisorTable entry of
 * the agreement bits, rounded to f32. NaN when an entry is not finite (the callers' fallback).
 */
export function electedMean3(
  a0: number,
  a1: number,
  a2: number,
  dens: Float64Array,
  normalize: boolean,
): number {
  const sg = 2 * +(0 + a0 + a1 + a2 >= 0) - 1;
  const k0 = +(sg * a0 > 0);
  const k1 = +(sg * a1 > 0);
  const k2 = +(sg * a2 > 0);
  const num = 0 + a0 * k0 + a1 * k1 + a2 * k2;
  return Math.fround(normalize ? num / dens[k0 | (k1 << 1) | (k2 << 2)]! : num);
}

/** Per agreement bits c (bit j: model j agrees), 0 + w0 * c0 + w1 * c1 + w2 * c2, 0 replaced by 1. */
export function divisorTable(w0: number, w1: number, w2: number): Float64Array {
  const dens = new Float64Array(8);
  for (let c = 0; c < 8; c++) {
    const den = 0 + w0 * (c & 1) + w1 * ((c >> 1) & 1) + w2 * ((c >> 2) & 1);
    dens[c] = den === 0 ? 1 : den;
  }
  return dens;
}

function tiesMergeOne(args: TiesMergeArgs, i: number): void {
  const { out, base, deltas, weights, normalize, lambda, scales } = args;
  const f32 = out instanceof Float32Array;
  const delta = (j: number): number => {
    const d = deltas[j]![i]!;
    if (scales === undefined) return d;
    return f32 ? Math.fround(d * scales[j]!) : d * scales[j]!;
  };
  let s = 0;
  for (let j = 0; j < deltas.length; j++) s += weights[j]! * delta(j);
  const positive = s >= 0;
  let num = 0;
  let den = 0;
  for (let j = 0; j < deltas.length; j++) {
    const wd = weights[j]! * delta(j);
    if (positive ? wd > 0 : wd < 0) {
      num += wd;
      den += weights[j]!;
    }
  }
  const m = normalize ? num / (den === 0 ? 1 : den) : num;
  out[i] = base[i]! + (0 + lambda * (f32 ? Math.fround(m) : m));
}
