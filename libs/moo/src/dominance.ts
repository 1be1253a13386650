import {
  assertObjectiveVector,
  resolveDirections,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';

/**
 * Pareto dominance. Objectives are maximised unless `directions` says 'min' for one of them.
 * a dominates b when a is at least as good in every objective and strictly better in one.
 */
export function dominates(
  a: ObjectiveVector,
  b: ObjectiveVector,
  directions?: readonly Direction[],
): boolean {
  return compareDominance(a, b, directions) === 1;
}

/** 1 when a dominates b, -1 when b dominates a, 0 when neither does (or they are equal). */
export function compareDominance(
  a: ObjectiveVector,
  b: ObjectiveVector,
  directions?: readonly Direction[],
): -1 | 0 | 1 {
  assertObjectiveVector(a, 'a');
  assertObjectiveVector(b, 'b', a.length);
  const dirs = resolveDirections(directions, a.length);
  let aBetter = false;
  let bBetter = false;
  for (let j = 0; j < a.length; j++) {
    const sign = dirs[j] === 'max' ? 1 : -1;
    const d = sign * ((a[j] as number) - (b[j] as number));
    if (d > 0) aBetter = true;
    else if (d < 0) bBetter = true;
    if (aBetter && bBetter) return 0;
  }
  if (aBetter) return 1;
  if (bBetter) return -1;
  return 0;
}

/** Dominance on vectors already in minimisation form (no checks; the hot path of the algorithms). */
export function compareMin(a: ArrayLike<number>, b: ArrayLike<number>): -1 | 0 | 1 {
  let aBetter = false;
  let bBetter = false;
  for (let j = 0; j < a.length; j++) {
    const x = a[j] as number;
    const y = b[j] as number;
    if (x < y) aBetter = true;
    else if (x > y) bBetter = true;
    if (aBetter && bBetter) return 0;
  }
  if (aBetter) return 1;
  if (bBetter) return -1;
  return 0;
}

/** a weakly dominates b in minimisation form: a <= b in every objective. */
export function weaklyDominatesMin(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let j = 0; j < a.length; j++) if ((a[j] as number) > (b[j] as number)) return false;
  return true;
}
