import { assertObjectiveVectors, type ObjectiveVector } from './objectives.js';

/**
 * NSGA-II crowding distance of the points of one front: per objective, the gap between a point's
 * two neighbours divided by the objective's range, averaged over objectives (pymoo's scaling).
 * Boundary points get Infinity; with two points or fewer every point does. Orientation-free.
 */
export function crowdingDistance(points: readonly ObjectiveVector[]): number[] {
  assertObjectiveVectors(points);
  return crowdingDistanceUnchecked(points);
}

/** The same without input checks (the NSGA-II hot path). */
export function crowdingDistanceUnchecked(points: readonly ArrayLike<number>[]): number[] {
  const n = points.length;
  if (n <= 2) return new Array<number>(n).fill(Infinity);
  const m = (points[0] as ArrayLike<number>).length;
  const distance = new Array<number>(n).fill(0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let j = 0; j < m; j++) {
    const v = (i: number): number => (points[i] as ArrayLike<number>)[j] as number;
    order.sort((a, b) => v(a) - v(b) || a - b);
    const range = v(order[n - 1] as number) - v(order[0] as number);
    for (let r = 0; r < n; r++) {
      const i = order[r] as number;
      const prev = r === 0 ? -Infinity : v(order[r - 1] as number);
      const next = r === n - 1 ? Infinity : v(order[r + 1] as number);
      if (range === 0) continue;
      distance[i] = (distance[i] as number) + (v(i) - prev) / range + (next - v(i)) / range;
    }
  }
  return distance.map((d) => d / m);
}
