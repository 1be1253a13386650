import type { FloatArray } from './float-array.js';

export interface SignVoteArgs {
  /** Written: +1 where sum_k w_k d_k[i] >= 0 (zero counts as positive, as mergekit), else -1. */
  out: Int8Array;
  deltas: FloatArray[];
  weights: number[];
}

/** TIES sign election ("sum" consensus) over [start, end). */
export function signVote(args: SignVoteArgs, start: number, end: number): void {
  const { out, deltas, weights } = args;
  const k = deltas.length;
  for (let i = start; i < end; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += weights[j]! * deltas[j]![i]!;
    out[i] = s >= 0 ? 1 : -1;
  }
}
