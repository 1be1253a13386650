import { InvalidArgumentError } from '@hm3/errors';
import { weaklyDominatesMin } from './dominance.js';
import { idealAndNadir, assertBounds, normalisePoint, type Bounds } from './normalise.js';
import {
  assertObjectiveVector,
  assertObjectiveVectors,
  resolveDirections,
  toMinimisation,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';
import { Rng } from './prng.js';

/** The HM3 paper's reference point: 1.1 in every objective after normalisation. */
export const DEFAULT_REFERENCE_AFTER_NORMALISATION = 1.1;

export interface HypervolumeOptions {
  /** Objectives are maximised unless they are marked 'min'. */
  directions?: readonly Direction[];
  /**
   * A reference point in the objective space itself (no normalisation); a point counts only where it
   * is strictly better than the reference in every objective. Not together with `bounds`.
   */
  reference?: readonly number[];
  /**
   * Normalise by these ideal and nadir points (ideal -> 0, nadir -> 1, every objective minimised)
   * and measure against `referenceAfterNormalisation`. Without `reference` and `bounds`, the ideal
   * and nadir of the points themselves are used.
   */
  bounds?: Bounds;
  /** The reference in the normalised space, the same in every objective. Default 1.1. */
  referenceAfterNormalisation?: number;
}

/**
 * Exact hypervolume: a sweep for 2 objectives, the HV3D sweep over a balanced tree for 3 (both
 * O(n log n)), WFG for 4 or more. An empty front has hypervolume 0.
 */
export function hypervolume(points: readonly ObjectiveVector[], options: HypervolumeOptions = {}): number {
  const { min, reference } = prepare(points, options);
  return exactMin(min, reference);
}

/** Exact hypervolume by the WFG algorithm alone, in any number of objectives (a cross-check). */
export function hypervolumeWfg(points: readonly ObjectiveVector[], options: HypervolumeOptions = {}): number {
  const { min, reference } = prepare(points, options);
  return wfg(nonDominatedMin(min), reference, false);
}

export interface MonteCarloOptions extends HypervolumeOptions {
  /** Number of uniform samples. Default 100,000. */
  samples?: number;
  /** Seed of the sampler. Default 0. */
  seed?: number;
  /** Confidence level of the interval. Default 0.95. */
  confidence?: number;
}

export interface HypervolumeEstimate {
  readonly estimate: number;
  /** Wilson score interval of the dominated fraction, times the sampled box's volume. */
  readonly lower: number;
  readonly upper: number;
  readonly confidence: number;
  readonly samples: number;
}

/**
 * A seeded Monte-Carlo estimate: uniform samples in the box between the points' ideal corner and the
 * reference; the fraction dominated, with its Wilson interval, times the box volume.
 */
export function hypervolumeMonteCarlo(
  points: readonly ObjectiveVector[],
  options: MonteCarloOptions = {},
): HypervolumeEstimate {
  const samples = options.samples ?? 100_000;
  const confidence = options.confidence ?? 0.95;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new InvalidArgumentError(`samples must be a positive integer, got ${samples}`, {
      field: 'samples',
    });
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new InvalidArgumentError(`confidence must lie in (0, 1), got ${confidence}`, {
      field: 'confidence',
    });
  }
  const { min, reference } = prepare(points, options);
  const front = nonDominatedMin(min);
  if (front.length === 0) return { estimate: 0, lower: 0, upper: 0, confidence, samples };
  const d = reference.length;
  const low = reference.map((_, j) => Math.min(...front.map((p) => p[j] as number)));
  const boxVolume = low.reduce((v, lj, j) => v * ((reference[j] as number) - lj), 1);
  const rng = new Rng(options.seed ?? 0);
  const sample = new Array<number>(d);
  let hits = 0;
  for (let s = 0; s < samples; s++) {
    for (let j = 0; j < d; j++) sample[j] = rng.uniform(low[j] as number, reference[j] as number);
    for (const p of front) {
      if (weaklyDominatesMin(p, sample)) {
        hits++;
        break;
      }
    }
  }
  const z = normalQuantile(0.5 + confidence / 2);
  const phat = hits / samples;
  const denom = 1 + (z * z) / samples;
  const centre = (phat + (z * z) / (2 * samples)) / denom;
  const half = (z * Math.sqrt((phat * (1 - phat)) / samples + (z * z) / (4 * samples * samples))) / denom;
  return {
    estimate: boxVolume * phat,
    lower: boxVolume * Math.max(0, centre - half),
    upper: boxVolume * Math.min(1, centre + half),
    confidence,
    samples,
  };
}

// ---------------------------------------------------------------------------------------------------
// Input: orientation, normalisation, reference.

interface Prepared {
  /** Points in minimisation form, strictly better than the reference in every objective. */
  min: number[][];
  reference: number[];
}

function prepare(points: readonly ObjectiveVector[], options: HypervolumeOptions): Prepared {
  if (options.reference !== undefined && options.bounds !== undefined) {
    throw new InvalidArgumentError(
      'give either reference (raw space) or bounds (normalised space), not both',
      {
        field: 'reference',
      },
    );
  }
  const m =
    (points[0] as ObjectiveVector | undefined)?.length ??
    options.reference?.length ??
    options.bounds?.ideal.length ??
    options.directions?.length;
  if (m === undefined) return { min: [], reference: [] };
  assertObjectiveVectors(points, 'points', m);
  const dirs = resolveDirections(options.directions, m);
  let min: number[][];
  let reference: number[];
  if (options.reference !== undefined) {
    assertObjectiveVector(options.reference, 'reference', m);
    reference = toMinimisation(options.reference, dirs);
    min = points.map((p) => toMinimisation(p, dirs));
  } else {
    const factor = options.referenceAfterNormalisation ?? DEFAULT_REFERENCE_AFTER_NORMALISATION;
    if (!Number.isFinite(factor)) {
      throw new InvalidArgumentError(`referenceAfterNormalisation must be finite, got ${factor}`, {
        field: 'referenceAfterNormalisation',
      });
    }
    if (points.length === 0) return { min: [], reference: new Array<number>(m).fill(factor) };
    const bounds = options.bounds ?? idealAndNadir(points, dirs);
    assertBounds(bounds, dirs);
    reference = new Array<number>(m).fill(factor);
    min = points.map((p) => normalisePoint(p, bounds, dirs));
  }
  return { min: min.filter((p) => p.every((v, j) => v < (reference[j] as number))), reference };
}

/** Exact hypervolume of minimisation points that are all strictly below the reference. */
export function exactMin(points: number[][], reference: readonly number[]): number {
  if (points.length === 0) return 0;
  const d = reference.length;
  if (d === 1) return (reference[0] as number) - Math.min(...points.map((p) => p[0] as number));
  if (d === 2) return hv2d(points, reference);
  if (d === 3) return hv3d(points, reference);
  return wfg(nonDominatedMin(points), reference, true);
}

// ---------------------------------------------------------------------------------------------------
// 2 objectives: sort by the first, sweep.

function hv2d(points: readonly (readonly number[])[], reference: readonly number[]): number {
  const sorted = [...points].sort(
    (a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number),
  );
  const rx = reference[0] as number;
  let bestY = reference[1] as number;
  let area = 0;
  for (const p of sorted) {
    const y = p[1] as number;
    if (y < bestY) {
      area += (rx - (p[0] as number)) * (bestY - y);
      bestY = y;
    }
  }
  return area;
}

// ---------------------------------------------------------------------------------------------------
// 3 objectives: the HV3D sweep (Beume et al. 2009) over z; the 2-D staircase of (x, y) lives in a
// treap ordered by x (y strictly decreasing along it), so every insertion and removal is O(log n).

interface StairNode {
  x: number;
  y: number;
  priority: number;
  left: StairNode | null;
  right: StairNode | null;
}

/** Splits a treap into the in-order prefix where `goesLeft` holds and the rest (goesLeft monotone). */
function split(
  node: StairNode | null,
  goesLeft: (n: StairNode) => boolean,
): [StairNode | null, StairNode | null] {
  if (node === null) return [null, null];
  if (goesLeft(node)) {
    const [l, r] = split(node.right, goesLeft);
    node.right = l;
    return [node, r];
  }
  const [l, r] = split(node.left, goesLeft);
  node.left = r;
  return [l, node];
}

function merge(a: StairNode | null, b: StairNode | null): StairNode | null {
  if (a === null) return b;
  if (b === null) return a;
  if (a.priority > b.priority) {
    a.right = merge(a.right, b);
    return a;
  }
  b.left = merge(a, b.left);
  return b;
}

function rightmost(node: StairNode | null): StairNode | null {
  if (node === null) return null;
  while (node.right !== null) node = node.right;
  return node;
}

function leftmost(node: StairNode | null): StairNode | null {
  if (node === null) return null;
  while (node.left !== null) node = node.left;
  return node;
}

function inOrder(node: StairNode | null, out: StairNode[]): void {
  if (node === null) return;
  inOrder(node.left, out);
  out.push(node);
  inOrder(node.right, out);
}

function hv3d(points: readonly (readonly number[])[], reference: readonly number[]): number {
  const sorted = [...points].sort((a, b) => (a[2] as number) - (b[2] as number));
  const [rx, ry, rz] = reference as [number, number, number];
  const rng = new Rng(0x5eed);
  let tree: StairNode | null = null;
  let area = 0;
  let volume = 0;
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i] as readonly number[];
    const px = p[0] as number;
    const py = p[1] as number;
    const [atMost, right] = split(tree, (n) => n.x <= px);
    const pred = rightmost(atMost);
    if (pred !== null && pred.y <= py) {
      tree = merge(atMost, right); // weakly dominated in (x, y): the area does not change
    } else {
      // pred (if its x equals px) and the run of `right` with y >= py are dominated by p.
      const [left, same] = split(atMost, (n) => n.x < px);
      const [covered, rest] = split(right, (n) => n.y >= py);
      const removed: StairNode[] = [];
      inOrder(same, removed);
      inOrder(covered, removed);
      const leftNeighbour = rightmost(left);
      const next = leftmost(rest);
      let level = leftNeighbour === null ? ry : leftNeighbour.y;
      let x = px;
      for (const r of removed) {
        area += (level - py) * (r.x - x);
        x = r.x;
        level = r.y;
      }
      area += (level - py) * ((next === null ? rx : next.x) - x);
      const node: StairNode = { x: px, y: py, priority: rng.next(), left: null, right: null };
      tree = merge(merge(left, node), rest);
    }
    const zNext = i + 1 < sorted.length ? ((sorted[i + 1] as readonly number[])[2] as number) : rz;
    volume += area * (zNext - (p[2] as number));
  }
  return volume;
}

// ---------------------------------------------------------------------------------------------------
// 4+ objectives: WFG (While, Bradstreet and Barone 2012). hv = sum of exclusive contributions, each
// the inclusive box minus the hypervolume of the non-dominated "limit set" of the later points; the
// points are processed worst-first in the last objective so limit sets stay small. `fast` hands 2-
// and 3-objective sets to the sweeps; without it WFG runs alone (the cross-check of the sweeps).

function wfg(points: number[][], reference: readonly number[], fast: boolean): number {
  const n = points.length;
  if (n === 0) return 0;
  const d = reference.length;
  if (fast && d === 2) return hv2d(points, reference);
  if (fast && d === 3) return hv3d(points, reference);
  if (n === 1) return inclusive(points[0] as number[], reference);
  const last = d - 1;
  const sorted = [...points].sort((a, b) => (b[last] as number) - (a[last] as number));
  let total = 0;
  for (let k = 0; k < n; k++) {
    const p = sorted[k] as number[];
    const limit: number[][] = [];
    for (let q = k + 1; q < n; q++) {
      const other = sorted[q] as number[];
      const worse = new Array<number>(d);
      for (let j = 0; j < d; j++) worse[j] = Math.max(p[j] as number, other[j] as number);
      limit.push(worse);
    }
    total += inclusive(p, reference) - wfg(nonDominatedMin(limit), reference, fast);
  }
  return total;
}

function inclusive(p: readonly number[], reference: readonly number[]): number {
  let v = 1;
  for (let j = 0; j < p.length; j++) v *= (reference[j] as number) - (p[j] as number);
  return v;
}

/** The non-dominated points of a minimisation set, one copy of each duplicate. */
function nonDominatedMin(points: number[][]): number[][] {
  const kept: number[][] = [];
  for (const p of points) {
    let dominated = false;
    for (const q of kept) {
      if (weaklyDominatesMin(q, p)) {
        dominated = true;
        break;
      }
    }
    if (dominated) continue;
    let write = 0;
    for (const q of kept) if (!weaklyDominatesMin(p, q)) kept[write++] = q;
    kept.length = write;
    kept.push(p);
  }
  return kept;
}

/** The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return (
      -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}
