import { InvalidArgumentError } from '@hm3/errors';
import {
  assertObjectiveVector,
  assertObjectiveVectors,
  resolveDirections,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';

/** The best (ideal) and worst (nadir) value of every objective, in the caller's orientation. */
export interface Bounds {
  readonly ideal: readonly number[];
  readonly nadir: readonly number[];
}

/** Ideal and nadir of a set of points (the nadir of a set: its worst value per objective). */
export function idealAndNadir(points: readonly ObjectiveVector[], directions?: readonly Direction[]): Bounds {
  if (points.length === 0)
    throw new InvalidArgumentError('ideal and nadir of an empty set', { field: 'points' });
  assertObjectiveVectors(points);
  const m = (points[0] as ObjectiveVector).length;
  const dirs = resolveDirections(directions, m);
  const ideal: number[] = [];
  const nadir: number[] = [];
  for (let j = 0; j < m; j++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of points) {
      const v = p[j] as number;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    ideal.push(dirs[j] === 'max' ? hi : lo);
    nadir.push(dirs[j] === 'max' ? lo : hi);
  }
  return { ideal, nadir };
}

/**
 * Maps points into the normalised minimisation space: ideal -> 0, nadir -> 1 in every objective
 * (a maximised objective is flipped). An objective whose ideal equals its nadir is only shifted.
 */
export function normalise(
  points: readonly ObjectiveVector[],
  bounds: Bounds,
  directions?: readonly Direction[],
): number[][] {
  if (points.length === 0) return [];
  assertObjectiveVectors(points);
  const m = (points[0] as ObjectiveVector).length;
  const dirs = resolveDirections(directions, m);
  assertBounds(bounds, dirs);
  return points.map((p) => normalisePoint(p, bounds, dirs));
}

/** Checks that ideal and nadir are finite, of length m and the ideal is no worse than the nadir. */
export function assertBounds(bounds: Bounds, directions: readonly Direction[]): void {
  const m = directions.length;
  assertObjectiveVector(bounds.ideal, 'bounds.ideal', m);
  assertObjectiveVector(bounds.nadir, 'bounds.nadir', m);
  for (let j = 0; j < m; j++) {
    const gap = (bounds.nadir[j] as number) - (bounds.ideal[j] as number);
    if ((directions[j] === 'max' && gap > 0) || (directions[j] === 'min' && gap < 0)) {
      throw new InvalidArgumentError(`bounds: ideal[${j}] is worse than nadir[${j}]`, {
        field: `bounds.ideal[${j}]`,
        ideal: bounds.ideal[j],
        nadir: bounds.nadir[j],
        direction: directions[j],
      });
    }
  }
}

/** One point into the normalised minimisation space (unchecked). */
export function normalisePoint(
  point: ObjectiveVector,
  bounds: Bounds,
  directions: readonly Direction[],
): number[] {
  const out = new Array<number>(point.length);
  for (let j = 0; j < point.length; j++) {
    const ideal = bounds.ideal[j] as number;
    const range = Math.abs((bounds.nadir[j] as number) - ideal) || 1;
    const v = point[j] as number;
    out[j] = directions[j] === 'max' ? (ideal - v) / range : (v - ideal) / range;
  }
  return out;
}
