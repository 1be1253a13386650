import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocShared, WorkerPool } from '../worker-pool.js';
import { bernoulliMask } from './bernoulli-mask.js';
import { KERNEL_NAMES, kthLargestAbsParallel, registerKernels, topKMaskParallel } from './parallel.js';
import { randomStream } from './philox.js';
import { countEqualAbs, kthLargestAbs, topKMaskOf } from './radix-select.js';
import { weightedSum } from './weighted-sum.js';

describe('kernels on the worker pool', { timeout: 120_000 }, () => {
  let pool: WorkerPool;
  beforeAll(() => {
    pool = registerKernels(new WorkerPool({ size: 2, minRangeLength: 1000 }));
  });
  afterAll(async () => {
    await pool.close();
  });

  const n = 50_003;
  const fill = <T extends Float32Array | Float64Array>(x: T): T => {
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * Math.cos(i * 1.3) * ((i % 17) - 8);
    return x;
  };

  const roundInPlace = (x: Float64Array) => {
    for (let i = 0; i < x.length; i++) x[i] = Math.round(x[i]!);
    return x;
  };

  it('registers every kernel', () => {
    for (const name of KERNEL_NAMES) expect(pool.has(name)).toBe(true);
  });

  it('gives the same Bernoulli mask and weighted sum as one thread', async () => {
    const stream = randomStream(99n, 'model.layers.1.mlp.up_proj.weight\u0000m');
    const shared = allocShared(Uint8Array, n);
    await pool.run('bernoulliMask', { out: shared, stream, density: 0.3 }, n);
    const local = new Uint8Array(n);
    bernoulliMask({ out: local, stream, density: 0.3 }, 0, n);
    expect(Buffer.from(shared).equals(Buffer.from(local))).toBe(true);

    const a = fill(allocShared(Float32Array, n));
    const b = fill(allocShared(Float32Array, n)).reverse();
    const out = allocShared(Float32Array, n);
    await pool.run('weightedSum', { out, inputs: [a, b], weights: [0.25, -2] }, n);
    const ref = new Float32Array(n);
    weightedSum({ out: ref, inputs: [a, b], weights: [0.25, -2] }, 0, n);
    expect(out).toEqual(ref);
  });

  it('radix-selects and masks the top k like the sequential kernels, ties included', async () => {
    for (const x of [fill(allocShared(Float32Array, n)), roundInPlace(fill(allocShared(Float64Array, n)))]) {
      for (const k of [1, 777, 25_000, n - 1]) {
        const ranges = [
          { start: 0, end: 20_000 },
          { start: 20_000, end: 20_001 },
          { start: 20_001, end: n },
        ];
        const { equalByRange, ...sel } = await kthLargestAbsParallel(pool, x, k, ranges);
        expect(sel).toEqual(kthLargestAbs(x, k));
        // the last histogram's bin per range = countEqualAbs per range (no pass of its own)
        expect(equalByRange).toEqual(
          ranges.map((r) => countEqualAbs({ x, threshold: sel.value }, r.start, r.end)),
        );
        const par = allocShared(Uint8Array, n);
        await topKMaskParallel(pool, x, k, par, 'assign');
        const seq = new Uint8Array(n);
        topKMaskOf(x, k, seq, 'assign');
        expect(Buffer.from(par).equals(Buffer.from(seq))).toBe(true);
      }
    }
  });
});
