import { InvalidArgumentError } from '@hm3/errors';
import {
  assertObjectiveVector,
  resolveDirections,
  toMinimisation,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';
import { normaliseWeights, type NormaliseWeightsOptions } from './weight-vectors.js';

/**
 * Scalarisations turn an objective vector into one number for a weight vector w. Every one returns a
 * COST (lower is better): objectives are first put in minimisation form (maximised ones negated), so
 * the weighted sum of maximised scores comes back negated.
 */
export type ScalarisationSpec =
  | { kind: 'weighted-sum' }
  | { kind: 'tchebycheff' }
  | { kind: 'augmented-tchebycheff'; rho?: number }
  | { kind: 'pbi'; theta?: number };

export type ScalarisationKind = ScalarisationSpec['kind'];

/** Augmented Tchebycheff's rho by default. */
export const DEFAULT_RHO = 1e-4;
/** PBI's penalty theta by default (Zhang and Li 2007; pymoo). */
export const DEFAULT_THETA = 5;

export interface ScalariserOptions extends NormaliseWeightsOptions {
  weights: readonly number[];
  /** The ideal point z* (best value of each objective), in the caller's orientation. Needed by all but the weighted sum. */
  ideal?: readonly number[];
  directions?: readonly Direction[];
}

/** Builds a cost function f -> g(f | w, z*) after checking w (normalised onto the simplex) and z*. */
export function scalariser(
  spec: ScalarisationSpec,
  options: ScalariserOptions,
): (f: ObjectiveVector) => number {
  const m = options.weights.length;
  const w = normaliseWeights(options.weights, options);
  const dirs = resolveDirections(options.directions, m);
  let z: number[] = new Array<number>(m).fill(0);
  if (spec.kind !== 'weighted-sum') {
    if (options.ideal === undefined) {
      throw new InvalidArgumentError(`${spec.kind} needs the ideal point`, { field: 'ideal' });
    }
    assertObjectiveVector(options.ideal, 'ideal', m);
    z = toMinimisation(options.ideal, dirs);
  }
  const parameter =
    spec.kind === 'augmented-tchebycheff'
      ? (spec.rho ?? DEFAULT_RHO)
      : spec.kind === 'pbi'
        ? (spec.theta ?? DEFAULT_THETA)
        : 0;
  if (!(Number.isFinite(parameter) && parameter >= 0)) {
    throw new InvalidArgumentError(
      `${spec.kind}: parameter must be a non-negative number, got ${parameter}`,
      { field: spec.kind },
    );
  }
  const kernel = kernelFor(spec.kind);
  return (f) => {
    assertObjectiveVector(f, 'objectives', m);
    return kernel(toMinimisation(f, dirs), w, z, parameter);
  };
}

/** Weighted sum as a cost: sum_i w_i f'_i with f' in minimisation form. */
export function weightedSum(
  f: ObjectiveVector,
  weights: readonly number[],
  directions?: readonly Direction[],
): number {
  return scalariser({ kind: 'weighted-sum' }, { weights, directions })(f);
}

/** Tchebycheff: max_i w_i |f_i - z*_i|. */
export function tchebycheff(
  f: ObjectiveVector,
  weights: readonly number[],
  ideal: readonly number[],
  directions?: readonly Direction[],
): number {
  return scalariser({ kind: 'tchebycheff' }, { weights, ideal, directions })(f);
}

/** Augmented Tchebycheff: max_i w_i |f_i - z*_i| + rho sum_i w_i |f_i - z*_i|. */
export function augmentedTchebycheff(
  f: ObjectiveVector,
  weights: readonly number[],
  ideal: readonly number[],
  rho = DEFAULT_RHO,
  directions?: readonly Direction[],
): number {
  return scalariser({ kind: 'augmented-tchebycheff', rho }, { weights, ideal, directions })(f);
}

/** Penalty-based boundary intersection: d1 + theta d2 along w from z*, in minimisation form. */
export function pbi(
  f: ObjectiveVector,
  weights: readonly number[],
  ideal: readonly number[],
  theta = DEFAULT_THETA,
  directions?: readonly Direction[],
): number {
  return scalariser({ kind: 'pbi', theta }, { weights, ideal, directions })(f);
}

type Kernel = (f: readonly number[], w: readonly number[], z: readonly number[], parameter: number) => number;

/** The unchecked kernel of a scalarisation, on minimisation-form vectors (MOEA/D's hot loop). */
export function kernelFor(kind: ScalarisationKind): Kernel {
  switch (kind) {
    case 'weighted-sum':
      return weightedSumKernel;
    case 'tchebycheff':
      return tchebycheffKernel;
    case 'augmented-tchebycheff':
      return augmentedTchebycheffKernel;
    case 'pbi':
      return pbiKernel;
  }
}

function weightedSumKernel(f: readonly number[], w: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < f.length; i++) s += (w[i] as number) * (f[i] as number);
  return s;
}

function tchebycheffKernel(f: readonly number[], w: readonly number[], z: readonly number[]): number {
  let g = -Infinity;
  for (let i = 0; i < f.length; i++) {
    const v = (w[i] as number) * Math.abs((f[i] as number) - (z[i] as number));
    if (v > g) g = v;
  }
  return g;
}

function augmentedTchebycheffKernel(
  f: readonly number[],
  w: readonly number[],
  z: readonly number[],
  rho: number,
): number {
  let g = -Infinity;
  let s = 0;
  for (let i = 0; i < f.length; i++) {
    const v = (w[i] as number) * Math.abs((f[i] as number) - (z[i] as number));
    if (v > g) g = v;
    s += v;
  }
  return g + rho * s;
}

function pbiKernel(f: readonly number[], w: readonly number[], z: readonly number[], theta: number): number {
  let norm = 0;
  let d1 = 0;
  for (let i = 0; i < f.length; i++) {
    norm += (w[i] as number) * (w[i] as number);
    d1 += ((f[i] as number) - (z[i] as number)) * (w[i] as number);
  }
  norm = Math.sqrt(norm);
  d1 = Math.abs(d1) / norm;
  let d2 = 0;
  for (let i = 0; i < f.length; i++) {
    const r = (f[i] as number) - (z[i] as number) - (d1 * (w[i] as number)) / norm;
    d2 += r * r;
  }
  return d1 + theta * Math.sqrt(d2);
}
