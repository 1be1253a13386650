import type { FloatArray } from './float-array.js';

export interface AxpyArgs {
  /** Updated in place: y[i] += alpha * x[i]. */
  y: FloatArray;
  x: FloatArray;
  alpha: number;
}

/** y[i] += alpha * x[i] over [start, end). */
export function axpy(args: AxpyArgs, start: number, end: number): void {
  const { y, x, alpha } = args;
  for (let i = start; i < end; i++) y[i] = y[i]! + alpha * x[i]!;
}
