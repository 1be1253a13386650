/**
 * Reading a finished search: its front, the member that best fits a preference, and the paired
 * bootstrap that compares two candidates on the same held-out examples.
 */
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { recommendForPreference } from '@hm3/moo';
import type { ScoredCandidate, SearchResult } from './search.js';

/** The final front's members, in the order of `result.front`. */
export function frontMembers(result: SearchResult): ScoredCandidate[] {
  const byId = new Map(result.candidates.map((c) => [c.id, c]));
  return result.front.map((id) => {
    const c = byId.get(id);
    if (!c)
      throw new NotFoundError(`front member ${id} is not among the search's candidates`, { candidateId: id });
    return c;
  });
}

/** Parses `0.6,0.2,0.2` into K non-negative weights summing to 1 (field `preference`). */
export function parsePreference(text: string, k: number): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const w = parts.map(Number);
  if (parts.length !== k || w.some((x) => !Number.isFinite(x) || x < 0))
    throw new InvalidArgumentError(
      `--preference: "${text}" must be ${k} non-negative numbers separated by commas`,
      {
        field: 'preference',
      },
    );
  const sum = w.reduce((a, b) => a + b, 0);
  if (sum <= 0)
    throw new InvalidArgumentError('--preference: the weights are all zero', { field: 'preference' });
  return w.map((x) => x / sum);
}

export interface Recommended {
  readonly candidate: ScoredCandidate;
  /** Index into frontMembers(result). */
  readonly index: number;
  /** weighted-sum: sum_k w_k f_k (higher is better); tchebycheff: the normalised cost (lower is better). */
  readonly value: number;
  readonly scalarization: RecommendScalarization;
}

export type RecommendScalarization = 'weighted-sum' | 'tchebycheff';

/**
 * The front member that best fits w, chosen on the SEARCH split (held-out scores are only reported).
 * Default: the largest weighted sum sum_k w_k f_k of the raw scores (every objective is a score in
 * [0, 1], so the uniform preference picks the best mean over tasks). 'tchebycheff': the lowest
 * augmented Tchebycheff cost after normalising the front to its own ideal and nadir (balanced points).
 */
export function recommend(
  result: SearchResult,
  preference: readonly number[],
  scalarization: RecommendScalarization = 'weighted-sum',
): Recommended {
  const members = frontMembers(result);
  if (members.length === 0)
    throw new NotFoundError('the search has an empty front', { searchId: result.searchId });
  if (preference.length !== result.objectives.length)
    throw new InvalidArgumentError(
      `the preference has ${preference.length} weights, the search ${result.objectives.length} objectives`,
      { field: 'preference' },
    );
  if (scalarization === 'tchebycheff') {
    const pick = recommendForPreference(
      members.map((m) => [...m.search]),
      preference,
      { scalarisation: { kind: 'augmented-tchebycheff' } },
    );
    return { candidate: members[pick.index]!, index: pick.index, value: pick.score, scalarization };
  }
  let index = 0;
  let best = -Infinity;
  members.forEach((m, i) => {
    const v = m.search.reduce((s, f, k) => s + preference[k]! * f, 0);
    if (v > best + 1e-12) {
      best = v;
      index = i;
    }
  });
  return { candidate: members[index]!, index, value: best, scalarization };
}

export interface BootstrapInterval {
  readonly mean: number;
  readonly lower: number;
  readonly upper: number;
  readonly samples: number;
}

/**
 * Paired bootstrap of the mean-over-objectives difference a - b: per objective, the same resampled
 * example indices for both (paired), the difference of the means, averaged over objectives.
 * perExample[k][i] in [0, 1]. Percentile interval at `confidence`.
 */
export function pairedBootstrap(
  a: readonly (readonly number[])[],
  b: readonly (readonly number[])[],
  options: { samples?: number; confidence?: number; seed?: number } = {},
): BootstrapInterval {
  if (a.length !== b.length || a.length === 0)
    throw new InvalidArgumentError('pairedBootstrap: both sides need the same objectives', {
      field: 'perExample',
    });
  a.forEach((row, k) => {
    if (row.length !== b[k]!.length || row.length === 0)
      throw new InvalidArgumentError(
        `pairedBootstrap: objective ${k} has ${row.length} vs ${b[k]!.length} examples`,
        {
          field: `perExample[${k}]`,
        },
      );
  });
  const samples = options.samples ?? 2000;
  const confidence = options.confidence ?? 0.95;
  let state = (options.seed ?? 1) >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const diff = a.map((row, k) => row.map((x, i) => x - b[k]![i]!));
  const meanOf = (d: readonly number[]) => d.reduce((s, x) => s + x, 0) / d.length;
  const mean = diff.reduce((s, d) => s + meanOf(d), 0) / diff.length;
  const stats: number[] = [];
  for (let s = 0; s < samples; s++) {
    let total = 0;
    for (const d of diff) {
      let sum = 0;
      for (let i = 0; i < d.length; i++) sum += d[Math.floor(next() * d.length)]!;
      total += sum / d.length;
    }
    stats.push(total / diff.length);
  }
  stats.sort((x, y) => x - y);
  const alpha = (1 - confidence) / 2;
  const at = (q: number) => stats[Math.min(samples - 1, Math.max(0, Math.floor(q * samples)))]!;
  return { mean, lower: at(alpha), upper: at(1 - alpha), samples };
}
