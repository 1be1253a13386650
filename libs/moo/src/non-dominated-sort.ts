import { compareMin } from './dominance.js';
import {
  assertObjectiveVectors,
  resolveDirections,
  toMinimisation,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';

export interface NonDominatedSortOptions {
  directions?: readonly Direction[];
  /** Stop once at least this many points are ranked (NSGA-II survival needs no more). */
  stopAfter?: number;
}

/**
 * Fast non-dominated sort (Deb et al. 2002): the indices of `points` split into fronts, front 0 the
 * non-dominated set, front k those dominated only by points of fronts < k. Indices ascend in a front;
 * equal vectors share a front. O(M N^2).
 */
export function nonDominatedSort(
  points: readonly ObjectiveVector[],
  options: NonDominatedSortOptions = {},
): number[][] {
  if (points.length === 0) return [];
  assertObjectiveVectors(points);
  const dirs = resolveDirections(options.directions, (points[0] as ObjectiveVector).length);
  return nonDominatedSortMin(
    points.map((p) => toMinimisation(p, dirs)),
    options.stopAfter,
  );
}

/** The same on vectors in minimisation form, unchecked. */
export function nonDominatedSortMin(points: readonly ArrayLike<number>[], stopAfter = Infinity): number[][] {
  const n = points.length;
  const dominatedBy = new Int32Array(n); // how many points dominate i
  const dominates: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    const pi = points[i] as ArrayLike<number>;
    for (let j = i + 1; j < n; j++) {
      const rel = compareMin(pi, points[j] as ArrayLike<number>);
      if (rel === 1) {
        (dominates[i] as number[]).push(j);
        dominatedBy[j] = (dominatedBy[j] as number) + 1;
      } else if (rel === -1) {
        (dominates[j] as number[]).push(i);
        dominatedBy[i] = (dominatedBy[i] as number) + 1;
      }
    }
  }
  const fronts: number[][] = [];
  let current: number[] = [];
  for (let i = 0; i < n; i++) if (dominatedBy[i] === 0) current.push(i);
  let ranked = 0;
  while (current.length > 0) {
    fronts.push(current);
    ranked += current.length;
    if (ranked >= stopAfter) break;
    const next: number[] = [];
    for (const i of current) {
      for (const j of dominates[i] as number[]) {
        dominatedBy[j] = (dominatedBy[j] as number) - 1;
        if (dominatedBy[j] === 0) next.push(j);
      }
    }
    next.sort((a, b) => a - b);
    current = next;
  }
  return fronts;
}

/** The indices of the non-dominated points (front 0), ascending. */
export function nonDominatedIndices(
  points: readonly ObjectiveVector[],
  directions?: readonly Direction[],
): number[] {
  return nonDominatedSort(points, { directions, stopAfter: 1 })[0] ?? [];
}
