/** The episode reward R = scalarise(F | w) - beta * T, and the checks on preferences and scores. */
import { InvalidArgumentError } from '@hm3/errors';

export type Scalarisation = 'weighted-sum' | 'tchebycheff';

export interface RewardSettings {
  readonly scalarisation: Scalarisation;
  /** Length penalty per layer. */
  readonly beta: number;
  /** Ideal point z* for Tchebycheff (best expert score per objective); default all ones. */
  readonly ideal?: readonly number[];
}

/** Validates a preference: K finite, non-negative weights, not all zero; returns it normalised to sum 1. */
export function checkPreference(w: readonly number[], k: number): number[] {
  if (w.length !== k)
    throw new InvalidArgumentError(`preference has ${w.length} weights, the policy has ${k} objectives`, {
      field: 'preference',
    });
  w.forEach((x, i) => {
    if (!Number.isFinite(x))
      throw new InvalidArgumentError(`preference weight ${i} is not finite (${x})`, {
        field: `preference[${i}]`,
      });
    if (x < 0)
      throw new InvalidArgumentError(`preference weight ${i} is negative (${x})`, {
        field: `preference[${i}]`,
      });
  });
  const s = w.reduce((a, b) => a + b, 0);
  if (s <= 0) throw new InvalidArgumentError('preference weights are all zero', { field: 'preference' });
  return w.map((x) => x / s);
}

/** Validates objective scores: K finite numbers. */
export function checkScores(scores: readonly number[], k: number, field = 'scores'): void {
  if (scores.length !== k)
    throw new InvalidArgumentError(`${scores.length} scores for ${k} objectives`, { field });
  scores.forEach((x, i) => {
    if (!Number.isFinite(x))
      throw new InvalidArgumentError(`score ${i} is not finite (${x})`, { field: `${field}[${i}]` });
  });
}

/** A finite reward or a typed error. */
export function checkReward(r: number, field = 'reward'): number {
  if (!Number.isFinite(r)) throw new InvalidArgumentError(`reward is not finite (${r})`, { field });
  return r;
}

/**
 * Weighted sum: sum_k w_k F_k (maximised). Tchebycheff: -max_k w_k |z*_k - F_k| (negated so that
 * larger is better). Both minus beta * pathLength.
 */
export function episodeReward(
  scores: readonly number[],
  w: readonly number[],
  pathLength: number,
  settings: RewardSettings,
): number {
  checkScores(scores, w.length);
  let s: number;
  if (settings.scalarisation === 'weighted-sum') {
    s = 0;
    scores.forEach((f, k) => (s += (w[k] as number) * f));
  } else {
    s = -Infinity;
    scores.forEach((f, k) => {
      const z = settings.ideal?.[k] ?? 1;
      s = Math.max(s, (w[k] as number) * Math.abs(z - f));
    });
    s = -s;
  }
  return checkReward(s - settings.beta * pathLength);
}
