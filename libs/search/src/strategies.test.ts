import { describe, expect, it } from 'vitest';
import { mulberry32 } from './search.js';
import { majorityHead, mutatePath } from './strategies.js';

const own = (model: number, layers = 8) =>
  Array.from({ length: layers }, (_, t) => ({ poolIndex: model, layerIndex: t }));

describe('lower-level helpers', () => {
  it('mutatePath swaps one layer or a block of 2-3 for another model at the same positions', () => {
    const rng = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      const parent = own(3);
      const child = mutatePath(parent, 4, 8, rng);
      expect(child).toHaveLength(8);
      const changed = child
        .map((s, t) => (s.poolIndex !== parent[t]!.poolIndex ? t : -1))
        .filter((t) => t >= 0);
      expect(changed.length).toBeGreaterThanOrEqual(1);
      expect(changed.length).toBeLessThanOrEqual(3);
      // contiguous, one new model, native positions
      expect(changed.at(-1)! - changed[0]!).toBe(changed.length - 1);
      expect(new Set(changed.map((t) => child[t]!.poolIndex)).size).toBe(1);
      for (const t of changed)
        expect(child[t]).toEqual({ poolIndex: child[changed[0]!]!.poolIndex, layerIndex: t });
      expect(parent).toEqual(own(3));
    }
  });

  it('majorityHead: the model most steps come from, ties to the first step', () => {
    expect(majorityHead([...own(1, 5), ...own(2, 3)])).toBe(1);
    expect(
      majorityHead([
        { poolIndex: 2, layerIndex: 0 },
        { poolIndex: 0, layerIndex: 1 },
      ]),
    ).toBe(2);
  });
});
