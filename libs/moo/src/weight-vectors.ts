import { InvalidArgumentError } from '@hm3/errors';
import { Rng } from './prng.js';

/** Tolerance on |sum - 1| under which a weight vector counts as on the simplex. */
export const SIMPLEX_TOLERANCE = 1e-9;

/**
 * The Das-Dennis lattice: every vector of m entries k/partitions (k integer) summing to 1,
 * C(partitions + m - 1, m - 1) of them, in lexicographic order of the first entries descending.
 */
export function dasDennis(m: number, partitions: number): number[][] {
  assertPositiveInteger(m, 'objectives');
  if (!Number.isInteger(partitions) || partitions < 0 || (partitions === 0 && m > 1)) {
    throw new InvalidArgumentError(`partitions must be a positive integer, got ${partitions}`, {
      field: 'partitions',
    });
  }
  const out: number[][] = [];
  const current: number[] = [];
  const walk = (left: number, depth: number): void => {
    if (depth === m - 1) {
      out.push([...current, left / partitions].map((v) => v));
      return;
    }
    for (let k = left; k >= 0; k--) {
      current.push(k / partitions);
      walk(left - k, depth + 1);
      current.pop();
    }
  };
  if (m === 1) return [[1]];
  walk(partitions, 0);
  return out;
}

/** The number of Das-Dennis vectors for m objectives and `partitions` divisions. */
export function dasDennisCount(m: number, partitions: number): number {
  let c = 1;
  for (let i = 1; i < m; i++) c = (c * (partitions + i)) / i;
  return Math.round(c);
}

/** n vectors drawn from Dirichlet(alpha) (alpha a number for a symmetric one), seeded. */
export function dirichletWeights(
  n: number,
  m: number,
  alpha: number | readonly number[],
  seed: number,
): number[][] {
  assertPositiveInteger(m, 'objectives');
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`count must be a non-negative integer, got ${n}`, { field: 'count' });
  const alphas = typeof alpha === 'number' ? new Array<number>(m).fill(alpha) : [...alpha];
  if (alphas.length !== m) {
    throw new InvalidArgumentError(`alpha has ${alphas.length} entries, expected ${m}`, { field: 'alpha' });
  }
  alphas.forEach((a, j) => {
    if (!(Number.isFinite(a) && a > 0)) {
      throw new InvalidArgumentError(`alpha[${j}] must be a positive number, got ${a}`, {
        field: `alpha[${j}]`,
      });
    }
  });
  const rng = new Rng(seed);
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    for (;;) {
      const g = alphas.map((a) => rng.gamma(a));
      const sum = g.reduce((s, v) => s + v, 0);
      if (sum > 0) {
        out.push(g.map((v) => v / sum));
        break;
      }
    }
  }
  return out;
}

/** n vectors uniform on the simplex (Dirichlet(1, ..., 1)), seeded. */
export function uniformSimplexWeights(n: number, m: number, seed: number): number[][] {
  return dirichletWeights(n, m, 1, seed);
}

export interface NormaliseWeightsOptions {
  /** Where a warning goes when the vector had to be rescaled. Default: process.emitWarning. */
  onWarning?: (message: string, details: Record<string, unknown>) => void;
  /** The field name in errors and warnings. Default 'weights'. */
  field?: string;
}

/**
 * A weight vector put on the simplex: a negative or non-finite entry, or an all-zero vector, is
 * rejected; a vector whose sum is not 1 is divided by its sum, with a warning.
 */
export function normaliseWeights(
  weights: readonly number[],
  options: NormaliseWeightsOptions = {},
): number[] {
  const field = options.field ?? 'weights';
  if (weights.length === 0) throw new InvalidArgumentError(`${field} is empty`, { field });
  let sum = 0;
  weights.forEach((w, j) => {
    if (typeof w !== 'number' || !Number.isFinite(w)) {
      throw new InvalidArgumentError(`${field}[${j}] is ${String(w)}: weights must be finite`, {
        field,
        index: j,
      });
    }
    if (w < 0) {
      throw new InvalidArgumentError(`${field}[${j}] is ${w}: weights must not be negative`, {
        field,
        index: j,
        value: w,
      });
    }
    sum += w;
  });
  if (sum === 0) throw new InvalidArgumentError(`${field} are all zero`, { field });
  if (Math.abs(sum - 1) <= SIMPLEX_TOLERANCE) return [...weights];
  const warn =
    options.onWarning ??
    ((message: string) => process.emitWarning(message, { code: 'HM3_MOO_WEIGHTS_NORMALISED' }));
  warn(`${field} sum to ${sum}, not 1: normalised onto the simplex`, { field, sum });
  return weights.map((w) => w / sum);
}

function assertPositiveInteger(v: number, field: string): void {
  if (!Number.isInteger(v) || v < 1)
    throw new InvalidArgumentError(`${field} must be a positive integer, got ${v}`, { field });
}
