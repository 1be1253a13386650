import { describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import {
  dasDennis,
  dasDennisCount,
  dirichletWeights,
  normaliseWeights,
  uniformSimplexWeights,
} from './weight-vectors.js';

const onSimplex = (w: number[]): boolean =>
  w.every((v) => v >= 0) && Math.abs(w.reduce((s, v) => s + v, 0) - 1) < 1e-12;

describe('weight vectors', () => {
  it('builds the Das-Dennis lattice', () => {
    expect(dasDennis(2, 2)).toEqual([
      [1, 0],
      [0.5, 0.5],
      [0, 1],
    ]);
    const w = dasDennis(3, 12);
    expect(w).toHaveLength(91);
    expect(dasDennisCount(3, 12)).toBe(91);
    expect(dasDennis(2, 99)).toHaveLength(100);
    expect(w.every(onSimplex)).toBe(true);
    expect(new Set(w.map((v) => v.join(','))).size).toBe(91);
  });

  it('samples Dirichlet(alpha) on the simplex, the same for the same seed', () => {
    const a = dirichletWeights(50, 4, 0.5, 11);
    expect(a.every(onSimplex)).toBe(true);
    expect(dirichletWeights(50, 4, 0.5, 11)).toEqual(a);
    expect(dirichletWeights(50, 4, 0.5, 12)).not.toEqual(a);
    // a large symmetric alpha concentrates at the centre
    const centred = dirichletWeights(200, 3, 200, 1);
    expect(Math.max(...centred.flat().map((v) => Math.abs(v - 1 / 3)))).toBeLessThan(0.1);
    expect(() => dirichletWeights(3, 2, [1, -1], 1)).toThrow(InvalidArgumentError);
  });

  it('samples uniformly on the simplex: the mean of each entry is 1/m', () => {
    const w = uniformSimplexWeights(4000, 3, 5);
    for (let j = 0; j < 3; j++) expect(w.reduce((s, v) => s + v[j]!, 0) / w.length).toBeCloseTo(1 / 3, 1);
  });

  it('normalises a weight vector off the simplex, with a warning', () => {
    const onWarning = vi.fn();
    expect(normaliseWeights([1, 3], { onWarning })).toEqual([0.25, 0.75]);
    expect(onWarning).toHaveBeenCalledOnce();
    expect(onWarning.mock.calls[0]![1]).toMatchObject({ sum: 4 });
    expect(normaliseWeights([0.5, 0.5], { onWarning })).toEqual([0.5, 0.5]);
    expect(onWarning).toHaveBeenCalledOnce();
  });

  it('emits a process warning by default', async () => {
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    normaliseWeights([2, 2]);
    expect((await warned).message).toMatch(/normalised onto the simplex/);
  });

  it('rejects negative, non-finite and all-zero weights', () => {
    try {
      normaliseWeights([0.5, -0.1, 0.6]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details).toMatchObject({ index: 1 });
    }
    expect(() => normaliseWeights([Number.NaN, 1])).toThrow(/finite/);
    expect(() => normaliseWeights([0, 0])).toThrow(/all zero/);
  });
});
