import type { OptimiserProblem } from './ask-tell.js';
import type { Bounds } from './normalise.js';

/** A benchmark problem: a box, minimised objectives, and the bounds of its true Pareto front. */
export interface BenchmarkProblem extends OptimiserProblem {
  readonly name: string;
  evaluate(x: readonly number[]): number[];
  /** Ideal and nadir of the true Pareto front (for normalised hypervolume). */
  readonly paretoBounds: Bounds;
  /**
   * The true front's ideal and a nadir no point of the box is worse than: normalising by these, every
   * evaluated point counts towards the hypervolume (for anytime comparisons from the first evaluations).
   */
  readonly objectiveSpaceBounds: Bounds;
}

function zdt(
  name: string,
  n: number,
  h: (f1: number, g: number) => number,
  bounds: Bounds,
  worstF2: number,
): BenchmarkProblem {
  return {
    name,
    lower: new Array<number>(n).fill(0),
    upper: new Array<number>(n).fill(1),
    objectives: 2,
    directions: ['min', 'min'],
    paretoBounds: bounds,
    objectiveSpaceBounds: { ideal: bounds.ideal, nadir: [1, worstF2] },
    evaluate(x) {
      const f1 = x[0] as number;
      let s = 0;
      for (let i = 1; i < x.length; i++) s += x[i] as number;
      const g = 1 + (9 * s) / (x.length - 1);
      return [f1, g * h(f1, g)];
    },
  };
}

/** ZDT1 (Zitzler, Deb and Thiele 2000): convex front f2 = 1 - sqrt(f1); 30 variables. */
export function zdt1(n = 30): BenchmarkProblem {
  // g <= 10 and h <= 1, so f2 <= 10
  return zdt('zdt1', n, (f1, g) => 1 - Math.sqrt(f1 / g), { ideal: [0, 0], nadir: [1, 1] }, 10);
}

/** ZDT2: concave front f2 = 1 - f1^2; 30 variables. */
export function zdt2(n = 30): BenchmarkProblem {
  return zdt('zdt2', n, (f1, g) => 1 - (f1 / g) ** 2, { ideal: [0, 0], nadir: [1, 1] }, 10);
}

/** ZDT3: disconnected front; 30 variables. Bounds of the front as pymoo computes them. */
export function zdt3(n = 30): BenchmarkProblem {
  // f2 = g h <= g + f1 <= 11
  return zdt(
    'zdt3',
    n,
    (f1, g) => 1 - Math.sqrt(f1 / g) - (f1 / g) * Math.sin(10 * Math.PI * f1),
    { ideal: [0, ZDT3_F2_MIN], nadir: [ZDT3_F1_MAX, 1] },
    11,
  );
}

const ZDT3_F1_MAX = 0.8518328654;
const ZDT3_F2_MIN = -0.7733690123266405;

/** DTLZ2 (Deb et al. 2002): the front is the positive part of the unit sphere; k = 10 distance variables. */
export function dtlz2(m = 3, k = 10): BenchmarkProblem {
  const n = m + k - 1;
  return {
    name: `dtlz2`,
    lower: new Array<number>(n).fill(0),
    upper: new Array<number>(n).fill(1),
    objectives: m,
    directions: new Array<'min'>(m).fill('min'),
    paretoBounds: { ideal: new Array<number>(m).fill(0), nadir: new Array<number>(m).fill(1) },
    // g <= k / 4, every objective <= 1 + g
    objectiveSpaceBounds: {
      ideal: new Array<number>(m).fill(0),
      nadir: new Array<number>(m).fill(1 + k / 4),
    },
    evaluate(x) {
      let g = 0;
      for (let i = m - 1; i < n; i++) g += ((x[i] as number) - 0.5) ** 2;
      const f: number[] = [];
      for (let i = 0; i < m; i++) {
        let v = 1 + g;
        for (let j = 0; j < m - 1 - i; j++) v *= Math.cos(((x[j] as number) * Math.PI) / 2);
        if (i > 0) v *= Math.sin(((x[m - 1 - i] as number) * Math.PI) / 2);
        f.push(v);
      }
      return f;
    },
  };
}
