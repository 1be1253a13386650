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
