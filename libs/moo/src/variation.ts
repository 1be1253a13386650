import type { Rng } from './prng.js';

/** A box of real variables: lower[i] <= x[i] <= upper[i]. */
export interface Box {
  readonly lower: readonly number[];
  readonly upper: readonly number[];
}

export interface SbxParameters {
  /** Probability that a mating crosses at all (else the children copy the parents). */
  probability: number;
  /** Distribution index eta: larger keeps children closer to their parents. */
  eta: number;
  /** Per-variable probability of crossing a variable. */
  variableProbability: number;
  /** Per-variable probability of exchanging the two children's values. */
  exchangeProbability: number;
}

export interface PolynomialMutationParameters {
  /** Probability that a child is mutated at all. */
  probability: number;
  /** Distribution index eta. */
  eta: number;
  /** Per-variable probability; undefined means min(0.5, 1 / n) (pymoo's default). */
  variableProbability?: number;
}

/** pymoo's NSGA-II defaults: SBX(prob 0.9, eta 15), PM(eta 20, prob 1/n per variable). */
export const NSGA2_SBX: SbxParameters = {
  probability: 0.9,
  eta: 15,
  variableProbability: 0.5,
  exchangeProbability: 0.5,
};
export const NSGA2_MUTATION: PolynomialMutationParameters = { probability: 0.9, eta: 20 };
/** pymoo's MOEA/D defaults: SBX(prob 1.0, eta 20), PM(eta 20). */
export const MOEAD_SBX: SbxParameters = {
  probability: 1,
  eta: 20,
  variableProbability: 0.5,
  exchangeProbability: 0.5,
};
export const MOEAD_MUTATION: PolynomialMutationParameters = { probability: 0.9, eta: 20 };

/** Uniform random point in the box. */
export function sampleUniform(box: Box, rng: Rng): number[] {
  return box.lower.map((lo, i) => rng.uniform(lo, box.upper[i] as number));
}

/**
 * A Latin hypercube design of n points in the box: every variable's range cut into n equal strata,
 * one point in each, the strata paired at random across variables (McKay et al. 1979).
 */
export function latinHypercube(n: number, box: Box, rng: Rng): number[][] {
  const points: number[][] = Array.from({ length: n }, () => new Array<number>(box.lower.length));
  for (let i = 0; i < box.lower.length; i++) {
    const lo = box.lower[i] as number;
    const width = ((box.upper[i] as number) - lo) / n;
    const strata = rng.permutation(n);
    for (let k = 0; k < n; k++)
      (points[k] as number[])[i] = lo + width * ((strata[k] as number) + rng.next());
  }
  return points;
}

/**
 * Simulated binary crossover (Deb and Agrawal 1995) with bounded spread, as pymoo implements it:
 * two children from two parents, clamped to the box.
 */
export function sbx(
  p1: readonly number[],
  p2: readonly number[],
  box: Box,
  params: SbxParameters,
  rng: Rng,
): [number[], number[]] {
  const c1 = [...p1];
  const c2 = [...p2];
  if (rng.next() >= params.probability) return [c1, c2];
  const eta = params.eta;
  for (let i = 0; i < p1.length; i++) {
    const xl = box.lower[i] as number;
    const xu = box.upper[i] as number;
    const a = p1[i] as number;
    const b = p2[i] as number;
    if (rng.next() >= params.variableProbability) continue;
    if (Math.abs(a - b) <= 1e-14 || xl === xu) continue;
    const y1 = Math.min(a, b);
    const y2 = Math.max(a, b);
    const delta = y2 - y1;
    const rand = rng.next();
    const betaq = (beta: number): number => {
      const alpha = 2 - Math.pow(beta, -(eta + 1));
      return rand <= 1 / alpha
        ? Math.pow(rand * alpha, 1 / (eta + 1))
        : Math.pow(1 / (2 - rand * alpha), 1 / (eta + 1));
    };
    const low = 0.5 * (y1 + y2 - betaq(1 + (2 * (y1 - xl)) / delta) * delta);
    const high = 0.5 * (y1 + y2 + betaq(1 + (2 * (xu - y2)) / delta) * delta);
    let first = a < b ? low : high;
    let second = a < b ? high : low;
    if (rng.next() < params.exchangeProbability !== a > b) [first, second] = [second, first];
    c1[i] = clamp(first, xl, xu);
    c2[i] = clamp(second, xl, xu);
  }
  return [c1, c2];
}

/** Polynomial mutation (Deb and Goyal 1996) as pymoo implements it; mutates x in place. */
export function polynomialMutation(
  x: number[],
  box: Box,
  params: PolynomialMutationParameters,
  rng: Rng,
): number[] {
  if (rng.next() >= params.probability) return x;
  const n = x.length;
  const pv = params.variableProbability ?? Math.min(0.5, 1 / n);
  const eta = params.eta;
  const power = 1 / (eta + 1);
  for (let i = 0; i < n; i++) {
    if (rng.next() >= pv) continue;
    const xl = box.lower[i] as number;
    const xu = box.upper[i] as number;
    if (xl === xu) continue;
    const v = x[i] as number;
    const range = xu - xl;
    const rand = rng.next();
    let deltaq: number;
    if (rand <= 0.5) {
      const xy = 1 - (v - xl) / range;
      const val = 2 * rand + (1 - 2 * rand) * Math.pow(xy, eta + 1);
      deltaq = Math.pow(val, power) - 1;
    } else {
      const xy = 1 - (xu - v) / range;
      const val = 2 * (1 - rand) + 2 * (rand - 0.5) * Math.pow(xy, eta + 1);
      deltaq = 1 - Math.pow(val, power);
    }
    x[i] = clamp(v + deltaq * range, xl, xu);
  }
  return x;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
