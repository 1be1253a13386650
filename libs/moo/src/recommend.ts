import { InvalidArgumentError } from '@hm3/errors';
import { idealAndNadir, normalisePoint, type Bounds } from './normalise.js';
import {
  assertObjectiveVectors,
  resolveDirections,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';
import { kernelFor, DEFAULT_RHO, DEFAULT_THETA, type ScalarisationSpec } from './scalarisation.js';
import { normaliseWeights, type NormaliseWeightsOptions } from './weight-vectors.js';

export interface Recommendation {
  /** Index into the front given. */
  readonly index: number;
  /** The criterion's value for that point (knee: distance beyond the extremes' hyperplane; preference: the cost). */
  readonly score: number;
}

export interface RecommendOptions {
  directions?: readonly Direction[];
  /** Normalisation bounds; default the front's own ideal and nadir. */
  bounds?: Bounds;
}

/**
 * The knee point of a front: after normalisation (ideal -> 0, nadir -> 1, minimised), the point
 * farthest beyond the hyperplane through the extreme points (one per objective) towards the ideal;
 * when the extremes do not span a hyperplane, the plane sum_i f_i = 1 is used. Ties: lowest index.
 */
export function kneePoint(front: readonly ObjectiveVector[], options: RecommendOptions = {}): Recommendation {
  const { normalised, m } = prepare(front, options);
  const extremes: number[][] = [];
  for (let j = 0; j < m; j++) {
    let best = 0;
    for (let i = 1; i < normalised.length; i++) {
      const a = normalised[i] as number[];
      const b = normalised[best] as number[];
      if ((a[j] as number) < (b[j] as number) || ((a[j] as number) === (b[j] as number) && sum(a) < sum(b)))
        best = i;
    }
    extremes.push(normalised[best] as number[]);
  }
  // plane n . f = 1 through the extremes; fall back to n = (1, ..., 1)
  let normal = solve(extremes, new Array<number>(m).fill(1));
  if (normal === undefined || normal.some((v) => !(v > 0))) normal = new Array<number>(m).fill(1);
  const length = Math.hypot(...normal);
  let index = 0;
  let score = -Infinity;
  normalised.forEach((p, i) => {
    const distance = (1 - p.reduce((s, v, j) => s + v * (normal[j] as number), 0)) / length;
    if (distance > score) {
      score = distance;
      index = i;
    }
  });
  return { index, score };
}

/**
 * The point of a front that best fits a preference w: the one of lowest cost under a scalarisation
 * (default augmented Tchebycheff) in the normalised space, where the ideal is the origin.
 */
export function recommendForPreference(
  front: readonly ObjectiveVector[],
  preference: readonly number[],
  options: RecommendOptions & NormaliseWeightsOptions & { scalarisation?: ScalarisationSpec } = {},
): Recommendation {
  const { normalised, m } = prepare(front, options);
  if (preference.length !== m) {
    throw new InvalidArgumentError(`preference has ${preference.length} entries, expected ${m}`, {
      field: 'preference',
    });
  }
  const w = normaliseWeights(preference, { ...options, field: options.field ?? 'preference' });
  const spec = options.scalarisation ?? { kind: 'augmented-tchebycheff' };
  const kernel = kernelFor(spec.kind);
  const parameter =
    spec.kind === 'augmented-tchebycheff'
      ? (spec.rho ?? DEFAULT_RHO)
      : spec.kind === 'pbi'
        ? (spec.theta ?? DEFAULT_THETA)
        : 0;
  const origin = new Array<number>(m).fill(0);
  let index = 0;
  let score = Infinity;
  normalised.forEach((p, i) => {
    const cost = kernel(p, w, origin, parameter);
    if (cost < score) {
      score = cost;
      index = i;
    }
  });
  return { index, score };
}

function prepare(
  front: readonly ObjectiveVector[],
  options: RecommendOptions,
): { normalised: number[][]; m: number } {
  if (front.length === 0)
    throw new InvalidArgumentError('cannot recommend from an empty front', { field: 'front' });
  assertObjectiveVectors(front, 'front');
  const m = (front[0] as ObjectiveVector).length;
  const dirs = resolveDirections(options.directions, m);
  const bounds = options.bounds ?? idealAndNadir(front, dirs);
  return { normalised: front.map((p) => normalisePoint(p, bounds, dirs)), m };
}

function sum(v: readonly number[]): number {
  return v.reduce((s, x) => s + x, 0);
}

/** Solves A n = b by Gaussian elimination with partial pivoting; undefined when A is singular. */
function solve(a: readonly (readonly number[])[], b: readonly number[]): number[] | undefined {
  const m = b.length;
  const rows = a.map((r, i) => [...r, b[i] as number]);
  for (let c = 0; c < m; c++) {
    let pivot = c;
    for (let r = c + 1; r < m; r++)
      if (Math.abs((rows[r] as number[])[c] as number) > Math.abs((rows[pivot] as number[])[c] as number))
        pivot = r;
    if (Math.abs((rows[pivot] as number[])[c] as number) < 1e-12) return undefined;
    [rows[c], rows[pivot]] = [rows[pivot] as number[], rows[c] as number[]];
    const top = rows[c] as number[];
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const row = rows[r] as number[];
      const f = (row[c] as number) / (top[c] as number);
      for (let k = c; k <= m; k++) row[k] = (row[k] as number) - f * (top[k] as number);
    }
  }
  return rows.map((row, i) => (row[m] as number) / (row[i] as number));
}
