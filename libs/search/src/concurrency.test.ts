import { describe, expect, it } from 'vitest';
import { mapLimit } from './concurrency.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('mapLimit', () => {
  it('keeps at most `limit` calls in flight and the results in item order', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 3, async (x) => {
      running++;
      peak = Math.max(peak, running);
      for (let i = 0; i < x; i++) await tick();
      running--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(3);
  });

  it('starts nothing after a failure, lets the calls in flight finish, then throws the first error', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    await expect(
      mapLimit([0, 1, 2, 3], 2, async (x) => {
        started.push(x);
        await tick();
        if (x === 1) throw new Error('one failed');
        await tick();
        await tick();
        finished.push(x);
        return x;
      }),
    ).rejects.toThrow('one failed');
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([0]);
  });

  it('runs one at a time with limit 1 and accepts an empty list', async () => {
    const order: string[] = [];
    await mapLimit(['a', 'b'], 1, async (x) => {
      order.push(`start ${x}`);
      await tick();
      order.push(`end ${x}`);
    });
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b']);
    expect(await mapLimit([], 4, () => Promise.resolve(1))).toEqual([]);
  });
});
