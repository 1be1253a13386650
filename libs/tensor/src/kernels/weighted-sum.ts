import type { FloatArray } from './float-array.js';

export interface WeightedSumArgs {
  /** Written: out[i] = offset[i] + scale * sum_k weights[k] * inputs[k][i] (offset optional, 0). */
  out: FloatArray;
  inputs: FloatArray[];
  weights: number[];
  /** Multiplies the sum before the offset is added (default 1). */
  scale?: number;
  /** Added after scaling (e.g. the base model); may alias `out`. */
  offset?: FloatArray;
}

/**
 * The weighted sum of K arrays, accumulated in f64 per element and rounded once into `out`:
 * out[i] = offset[i] + scale * sum_k w_k x_k[i], over [start, end).
 */
export function weightedSum(args: WeightedSumArgs, start: number, end: number): void {
  const { out, inputs, weights, offset } = args;
  const scale = args.scale ?? 1;
  const k = inputs.length;
  if (weights.length !== k) throw new RangeError(`weightedSum: ${k} inputs but ${weights.length} weights`);
  for (let i = start; i < end; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += weights[j]! * inputs[j]![i]!;
    out[i] = (offset === undefined ? 0 : offset[i]!) + scale * s;
  }
}
