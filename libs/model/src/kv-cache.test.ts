import { describe, expect, it } from 'vitest';
import { LayerKvCache } from './kv-cache.js';

describe('LayerKvCache', () => {
  it('appends position-major entries in place and grows, feeding the past as [P, B, KV, D]', () => {
    const cache = new LayerKvCache(2, 1, 2); // 4 floats per position
    expect(cache.length).toBe(0);
    expect(cache.past().key.dims).toEqual([0, 2, 1, 2]);
    cache.append(
      Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
      Float32Array.from([-1, -2, -3, -4, -5, -6, -7, -8]),
    );
    cache.append(Float32Array.from([9, 10, 11, 12]), Float32Array.from([-9, -10, -11, -12])); // grows
    cache.append(Float32Array.from([13, 14, 15, 16]), Float32Array.from([-13, -14, -15, -16]));
    expect(cache.length).toBe(4);
    const { key, value } = cache.past();
    expect(key.dims).toEqual([4, 2, 1, 2]);
    expect(Array.from(key.data as Float32Array)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(Array.from(value.data as Float32Array)).toEqual(Array.from({ length: 16 }, (_, i) => -(i + 1)));
  });
});
