import os from 'node:os';
import { InvalidArgumentError } from '@hm3/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudgetCache, checkWeightCacheBytes, defaultWeightCacheBytes } from './weight-cache.js';

interface Blob {
  readonly key: string;
  readonly bytes: number;
}

function cache(maxBytes: number, sizes: Record<string, number> = {}) {
  const loads: string[] = [];
  const removed: string[] = [];
  const c = new ByteBudgetCache<Blob>(
    maxBytes,
    (b) => b.bytes,
    (key) => removed.push(key),
  );
  const load = (key: string) => () => {
    loads.push(key);
    return Promise.resolve({ key, bytes: sizes[key] ?? 10 });
  };
  const use = async (key: string) => (await c.acquire(key, load(key))).release();
  const pin = (key: string) => c.acquire(key, load(key));
  const keys = () => c.list().map((e) => e.key);
  return { c, loads, removed, use, pin, keys };
}

describe('ByteBudgetCache', () => {
  it('evicts the least recently used entry first', async () => {
    const { c, use, keys, removed } = cache(30);
    await use('a');
    await use('b');
    await use('c');
    await use('a'); // a is now the most recently used
    await use('d');
    expect(keys()).toEqual(['c', 'a', 'd']);
    expect(removed).toEqual(['b']);
    expect(c.bytes).toBe(30);
    expect(c.evictions).toBe(1);
    await use('e');
    expect(keys()).toEqual(['a', 'd', 'e']);
  });

  it('never evicts a pinned entry, and trims to the budget once it is released', async () => {
    const { c, use, pin, keys, loads } = cache(20);
    const a = await pin('a');
    await use('b');
    await use('c'); // over budget: b goes, a is pinned
    await use('d');
    await use('e');
    expect(keys()).toEqual(['a', 'e']);
    expect(c.list().find((e) => e.key === 'a')?.pins).toBe(1);
    const again = await pin('a'); // the same entry, not a second load
    expect(again.value).toBe(a.value);
    expect(loads.filter((k) => k === 'a')).toHaveLength(1);
    a.release();
    a.release(); // once only
    expect(c.list().find((e) => e.key === 'a')?.pins).toBe(1);
    again.release();
    expect(c.bytes).toBeLessThanOrEqual(20);
  });

  it('holds an entry larger than the budget only while pinned, without evicting the others for it', async () => {
    const { c, use, pin, keys } = cache(20, { big: 50 });
    await use('a');
    const big = await pin('big');
    expect(big.value.bytes).toBe(50);
    expect(c.has('big')).toBe(true);
    big.release();
    expect(c.has('big')).toBe(false);
    expect(keys()).toEqual(['a']);
    expect(c.bytes).toBe(10);
  });

  it('keeps nothing with a zero budget, everything with an infinite one', async () => {
    const zero = cache(0);
    await zero.use('a');
    expect(zero.c.bytes).toBe(0);
    expect(zero.keys()).toEqual([]);
    const all = cache(Infinity);
    for (const k of ['a', 'b', 'c', 'd']) await all.use(k);
    expect(all.keys()).toEqual(['a', 'b', 'c', 'd']);
    expect(all.c.evictions).toBe(0);
  });

  it('loads a key once for concurrent acquirers, who share the value', async () => {
    const { c, loads, pin } = cache(100);
    const [x, y] = await Promise.all([pin('a'), pin('a')]);
    expect(x.value).toBe(y.value);
    expect(loads).toEqual(['a']);
    expect(c.list()).toEqual([{ key: 'a', bytes: 10, pins: 2 }]);
  });

  it('forgets a failed load, so the next acquire tries again', async () => {
    const removed: string[] = [];
    const c = new ByteBudgetCache<Blob>(
      100,
      (b) => b.bytes,
      (k) => removed.push(k),
    );
    await expect(c.acquire('a', () => Promise.reject(new Error('disk')))).rejects.toThrow('disk');
    expect(c.list()).toEqual([]);
    expect(removed).toEqual(['a']);
    const ok = await c.acquire('a', () => Promise.resolve({ key: 'a', bytes: 5 }));
    expect(ok.value.bytes).toBe(5);
  });

  it('over any sequence of pins and releases: within budget when nothing is pinned, pinned entries kept, bytes = sum of entries', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('pin' as const), key: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('release' as const), index: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 60 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 8, maxLength: 8 }),
        fc.array(op, { maxLength: 60 }),
        async (budget, sizes, ops) => {
          const c = new ByteBudgetCache<Blob>(budget, (b) => b.bytes);
          const held: { key: string; release: () => void }[] = [];
          const check = () => {
            const entries = c.list();
            expect(c.bytes).toBe(entries.reduce((s, e) => s + e.bytes, 0));
            for (const h of held) expect(c.has(h.key)).toBe(true);
            if (held.length === 0) expect(c.bytes).toBeLessThanOrEqual(budget);
            else {
              const pinned = entries.filter((e) => e.pins > 0).reduce((s, e) => s + e.bytes, 0);
              expect(c.bytes).toBeLessThanOrEqual(Math.max(budget, 0) + pinned);
            }
          };
          for (const o of ops) {
            if (o.kind === 'pin') {
              const key = `k${o.key}`;
              const p = await c.acquire(key, () => Promise.resolve({ key, bytes: sizes[o.key]! }));
              held.push({ key, release: p.release });
            } else if (held.length > 0) {
              held.splice(o.index % held.length, 1)[0]!.release();
            }
            check();
          }
          for (const h of held.splice(0)) h.release();
          check();
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('budget settings', () => {
  it('defaults to a quarter of the memory the process may use', () => {
    const bytes = defaultWeightCacheBytes();
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(Math.floor(os.totalmem() / 4));
  });

  it('refuses negative, fractional and non-numeric budgets', () => {
    for (const bad of [-1, 1.5, Number.NaN])
      expect(() => checkWeightCacheBytes(bad, 'weightCacheBytes')).toThrow(InvalidArgumentError);
    expect(checkWeightCacheBytes(0, 'x')).toBe(0);
    expect(checkWeightCacheBytes(Infinity, 'x')).toBe(Infinity);
  });
});
