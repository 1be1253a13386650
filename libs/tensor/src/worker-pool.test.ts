import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError, FailedPreconditionError } from '@hm3/errors';
import { KernelError, WorkerPool, allocShared, splitRange, toShared } from './worker-pool.js';

const kernels = new URL('./worker-pool-kernels.test-helper.ts', import.meta.url);

describe('splitRange', () => {
  it('covers [0, length) with contiguous, nearly equal ranges', () => {
    expect(splitRange(10, 3)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 7 },
      { start: 7, end: 10 },
    ]);
    expect(splitRange(0, 4)).toEqual([]);
    expect(splitRange(5, 4, 100)).toEqual([{ start: 0, end: 5 }]);
    expect(splitRange(1000, 4, 300)).toHaveLength(3);
  });
});

describe('WorkerPool', () => {
  const pool = new WorkerPool({ size: 2, minRangeLength: 1000 })
    .register('axpy', kernels)
    .register('sum', kernels)
    .register('scale', kernels)
    .register('boom', kernels)
    .register('slow', kernels)
    .register('die', kernels)
    .register('missing', kernels, 'noSuchExport');
  afterAll(() => pool.close());

  it('runs a kernel over shared arrays split across workers, results in range order', async () => {
    const n = 10_001;
    const y = allocShared(Float32Array, n);
    const x = allocShared(Float32Array, n);
    for (let i = 0; i < n; i++) {
      y[i] = i;
      x[i] = 1;
    }
    const counts = await pool.run<number>('axpy', { y, x, alpha: 2 }, n);
    expect(counts).toEqual([5001, 5000]);
    for (let i = 0; i < n; i++) expect(y[i]).toBe(i + 2);
  });

  it('takes explicit ranges and returns one result per range', async () => {
    const x = toShared(Float64Array.from({ length: 100 }, (_, i) => i));
    const sums = await pool.run<number>('sum', { x }, [
      { start: 0, end: 10 },
      { start: 10, end: 20 },
      { start: 20, end: 100 },
    ]);
    expect(sums).toEqual([45, 145, 4760]);
  });

  it('shares typed arrays inside a top-level array argument (module importing another module)', async () => {
    const a = toShared(new Float32Array([1, 2, 3, 4]));
    const b = toShared(new Float32Array([5, 6, 7, 8]));
    await pool.run('scale', { arrays: [a, b], factor: 10 }, [{ start: 1, end: 3 }]);
    expect([...a]).toEqual([1, 20, 30, 4]);
    expect([...b]).toEqual([5, 60, 70, 8]);
  });

  it('refuses typed arrays over a plain ArrayBuffer, naming the argument', async () => {
    await expect(
      pool.run('axpy', { y: new Float32Array(4), x: allocShared(Float32Array, 4), alpha: 1 }, 4),
    ).rejects.toThrow(InvalidArgumentError);
    await expect(
      pool.run('scale', { arrays: [allocShared(Float32Array, 2), new Float32Array(2)], factor: 1 }, 2),
    ).rejects.toThrow(/arrays\[1\]/);
  });

  it('propagates a kernel error with the kernel name and range; the pool stays usable', async () => {
    const err = await pool.run('boom', {}, [{ start: 7, end: 9 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as Error).message).toMatch(/kernel boom failed on range \[7, 9\): boom at 7/);
    expect((err as KernelError).details['workerErrorName']).toBe('RangeError');
    await expect(pool.run('missing', {}, 1)).rejects.toThrow(/exports no function noSuchExport/);
    await expect(pool.run('nope', {}, 1)).rejects.toThrow(NotFoundError);
    const x = toShared(new Float64Array([1, 2, 3]));
    expect(await pool.run('sum', { x }, 3)).toEqual([6]);
  });

  it('replaces a worker that dies during a task, failing only that run', async () => {
    await expect(pool.run('die', {}, 1)).rejects.toThrow(
      /kernel die failed on range \[0, 1\): worker exited/,
    );
    const x = toShared(new Float64Array([4, 5]));
    expect(
      await pool.run('sum', { x }, [
        { start: 0, end: 1 },
        { start: 1, end: 2 },
      ]),
    ).toEqual([4, 5]);
  });

  it('queues more ranges than workers and runs at most size at once', async () => {
    const out = allocShared(Int32Array, 1);
    const ranges = Array.from({ length: 6 }, (_, i) => ({ start: i, end: i + 1 }));
    const started = Date.now();
    const results = await pool.run<number>('slow', { ms: 50, out }, ranges);
    expect(results).toEqual([0, 1, 2, 3, 4, 5]);
    expect(out[0]).toBe(6);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140); // 3 waves of 50 ms on 2 workers
  });

  it('finishes queued work on close, then refuses new runs', async () => {
    const local = new WorkerPool({ size: 1 }).register('slow', kernels);
    const out = allocShared(Int32Array, 1);
    const pending = local.run('slow', { ms: 20, out }, [
      { start: 0, end: 1 },
      { start: 1, end: 2 },
    ]);
    await local.close();
    expect(await pending).toEqual([0, 1]);
    await expect(local.run('slow', { ms: 1, out }, 1)).rejects.toThrow(FailedPreconditionError);
  });
});
