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

export interface TaskVectorSumArgs {
  /** Written: out[i] = base[i] + scale * sum_k weights[k] * (models[k][i] - base[i]). */
  out: FloatArray;
  base: FloatArray;
  models: FloatArray[];
  weights: number[];
  /** Multiplies the weighted sum of the task vectors before the base is added (default 1). */
  scale?: number;
}

/**
 * Task arithmetic without materialising the task vectors: each delta models[k][i] - base[i] is rounded
 * to the element type of `out` (as a delta array of that type would hold it), the weighted sum is
 * accumulated in f64 and rounded once into `out`, over [start, end). The same values as computing the
 * deltas, then weightedSum with the base as offset. `out` may alias `base`.
 */
export function taskVectorSum(args: TaskVectorSumArgs, start: number, end: number): void {
  const { out, base, models, weights } = args;
  const scale = args.scale ?? 1;
  const k = models.length;
  if (weights.length !== k) throw new RangeError(`taskVectorSum: ${k} models but ${weights.length} weights`);
  if (out instanceof Float32Array) {
    // unrolled for the common model counts: one pass over every input, deltas rounded to f32
    if (k === 1) {
      const x0 = models[0]!;
      const w0 = weights[0]!;
      for (let i = start; i < end; i++) {
        const b = base[i]!;
        out[i] = b + scale * (0 + w0 * Math.fround(x0[i]! - b));
      }
      return;
    }
    if (k === 2) {
      const [x0, x1] = models as [FloatArray, FloatArray];
      const [w0, w1] = weights as [number, number];
      for (let i = start; i < end; i++) {
        const b = base[i]!;
        out[i] = b + scale * (0 + w0 * Math.fround(x0[i]! - b) + w1 * Math.fround(x1[i]! - b));
      }
      return;
    }
    if (k === 3) {
      const [x0, x1, x2] = models as [FloatArray, FloatArray, FloatArray];
      const [w0, w1, w2] = weights as [number, number, number];
      for (let i = start; i < end; i++) {
        const b = base[i]!;
        out[i] =
          b +
          scale *
            (0 + w0 * Math.fround(x0[i]! - b) + w1 * Math.fround(x1[i]! - b) + w2 * Math.fround(x2[i]! - b));
      }
      return;
    }
    for (let i = start; i < end; i++) {
      const b = base[i]!;
      let s = 0;
      for (let j = 0; j < k; j++) s += weights[j]! * Math.fround(models[j]![i]! - b);
      out[i] = b + scale * s;
    }
    return;
  }
  for (let i = start; i < end; i++) {
    const b = base[i]!;
    let s = 0;
    for (let j = 0; j < k; j++) s += weights[j]! * (models[j]![i]! - b);
    out[i] = b + scale * s;
  }
}
