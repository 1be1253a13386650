import { describe, expect, it } from 'vitest';
import { Rng } from './prng.js';
import { dtlz2, zdt1, zdt2, zdt3 } from './problems.js';

describe('benchmark problems (values checked against pymoo 0.6.2)', () => {
  const ramp = Array.from({ length: 30 }, (_, i) => i / 29);

  it('ZDT1, ZDT2, ZDT3', () => {
    expect(zdt3().evaluate(ramp)[0]).toBe(0);
    expect(zdt3().evaluate(ramp)[1]).toBeCloseTo(5.65517241, 7);
    const x = [0.25, ...new Array<number>(29).fill(0)];
    expect(zdt1().evaluate(x)).toEqual([0.25, 0.5]);
    expect(zdt2().evaluate(x)).toEqual([0.25, 1 - 0.0625]);
  });

  it('never evaluate a point worse than their objective-space nadir', () => {
    const rng = new Rng(4);
    for (const p of [zdt1(), zdt2(), zdt3(), dtlz2()]) {
      for (let i = 0; i < 2000; i++) {
        // corners of the box too: they give the extreme values
        const x = p.lower.map((lo, j) =>
          i < 10 ? (rng.next() < 0.5 ? lo : p.upper[j]!) : rng.uniform(lo, p.upper[j]!),
        );
        p.evaluate(x).forEach((v, j) => {
          expect(v).toBeLessThanOrEqual(p.objectiveSpaceBounds.nadir[j]! + 1e-12);
          expect(v).toBeGreaterThanOrEqual(p.objectiveSpaceBounds.ideal[j]! - 1e-9);
        });
      }
    }
  });

  it('DTLZ2 with 3 objectives and 12 variables', () => {
    const f = dtlz2().evaluate([0.1, 0.2, ...new Array<number>(10).fill(0.3)]);
    expect(f[0]).toBeCloseTo(1.31508641, 7);
    expect(f[1]).toBeCloseTo(0.42729748, 7);
    expect(f[2]).toBeCloseTo(0.21900825, 7);
    // on the front (distance variables 0.5) the point lies on the unit sphere
    const g = dtlz2().evaluate([0.3, 0.7, ...new Array<number>(10).fill(0.5)]);
    expect(Math.hypot(...g)).toBeCloseTo(1, 12);
  });
});
