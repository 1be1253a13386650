// Kernels used by worker-pool.test.ts; loaded by workers through tsx (a .ts module URL).
import { scaleInPlace } from './worker-pool-scale.test-helper.js';

export function axpy(
  args: { y: Float32Array; x: Float32Array; alpha: number },
  start: number,
  end: number,
): number {
  const { y, x, alpha } = args;
  for (let i = start; i < end; i++) y[i] = y[i]! + alpha * x[i]!;
  return end - start;
}

export function sum(args: { x: Float64Array }, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += args.x[i]!;
  return s;
}

export function scale(args: { arrays: Float32Array[]; factor: number }, start: number, end: number): void {
  for (const a of args.arrays) scaleInPlace(a, args.factor, start, end);
}

export function boom(_args: unknown, start: number): never {
  throw new RangeError(`boom at ${start}`);
}

export async function slow(args: { ms: number; out: Int32Array }, start: number): Promise<number> {
  await new Promise((r) => setTimeout(r, args.ms));
  Atomics.add(args.out, 0, 1);
  return start;
}

export function die(): void {
  process.exit(3); // ends the worker thread, not the process
}
