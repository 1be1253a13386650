import { describe, expect, it } from 'vitest';
import { Rng } from './random.js';

describe('Rng', () => {
  it('draws Gamma(alpha) and Dirichlet(alpha) with the right first two moments, reproducibly', () => {
    const r = new Rng(3);
    const N = 20_000;
    let m = 0;
    let v = 0;
    let gm = 0;
    for (let i = 0; i < N; i++) {
      const w = r.dirichlet(3, 0.3);
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      m += w[0]!;
      v += w[0]! ** 2;
      gm += r.gamma(2.5);
    }
    // Dirichlet(0.3, 0.3, 0.3): E = 1/3, Var = 0.3 * 0.6 / (0.9^2 * 1.9) = 0.117.
    expect(m / N).toBeCloseTo(1 / 3, 2);
    expect(v / N - (m / N) ** 2).toBeCloseTo(0.117, 2);
    expect(gm / N).toBeGreaterThan(2.4);
    expect(gm / N).toBeLessThan(2.6);
    expect(new Rng(9).dirichlet(4, 0.5)).toEqual(new Rng(9).dirichlet(4, 0.5));
    // alpha = 1 keeps the exponential draws (the same stream as before alpha existed).
    const e = new Rng(5);
    const g = [0, 1, 2].map(() => -Math.log(1 - e.uniform()));
    const s = g[0]! + g[1]! + g[2]!;
    expect(new Rng(5).dirichlet(3)).toEqual(g.map((x) => x / s));
  });
});
