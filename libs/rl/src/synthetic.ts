/**
 * The synthetic problems with a known optimum (acceptance of issue 10), shared by the tests and
 * `npm run bench -- rl`: a pool of P models x L layers with random layer features, hidden target paths,
 * reward = sum_k w_k * (fraction of positions matching target k) - beta * T.
 */
import { LayerPool } from './layer-pool.js';
import type { PathStep } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import type { Episode } from './path-policy.js';
import { Rng } from './random.js';
import type { PolicySettingsInput } from './settings.js';
import { matchFraction, samePath, TargetPathEnvironment, trainPolicy } from './trainer.js';

export interface TargetExperimentOptions {
  readonly seed: number;
  readonly models?: number;
  readonly layers?: number;
  readonly tMax?: number;
  readonly episodes?: number;
  readonly episodesPerUpdate?: number;
  readonly settings?: PolicySettingsInput;
}

export interface CurvePoint {
  readonly episodes: number;
  readonly meanReward: number;
  /** Fraction of positions where the greedy path matches the target. */
  readonly greedyMatch: number;
}

export interface TargetExperimentResult {
  readonly seed: number;
  /** Training episodes until the greedy path was the target; null when the budget ran out. */
  readonly foundAt: number | null;
  readonly curve: CurvePoint[];
  readonly seconds: number;
}

export function syntheticPool(models: number, layers: number, rng: Rng): LayerPool {
  return new LayerPool(
    Array.from({ length: models }, (_, m) => ({
      id: `synthetic-${m}`,
      layers,
      layerFeatures: Array.from({ length: layers }, () => [rng.normal(), rng.normal()]),
    })),
  );
}

/** One policy, one hidden target path: trains until the greedy path is the target or the budget ends. */
export async function runTargetExperiment(options: TargetExperimentOptions): Promise<TargetExperimentResult> {
  const started = Date.now();
  const rng = new Rng(1000 + options.seed);
  const T = options.tMax ?? 8;
  const pool = syntheticPool(options.models ?? 4, options.layers ?? 8, rng);
  const target = TargetPathEnvironment.randomTargets(pool, 1, T, rng)[0] as PathStep[];
  const env = new TargetPathEnvironment(pool, [target]);
  const policy = new PathPolicy(pool, { ...options.settings, tMax: T, objectives: 1, seed: options.seed });
  const curve: CurvePoint[] = [];
  let foundAt: number | null = null;
  await trainPolicy(policy, env, {
    episodes: options.episodes ?? 3000,
    episodesPerUpdate: options.episodesPerUpdate ?? 8,
    onUpdate: (p) => {
      const greedy = (policy.propose([[1]], 'greedy')[0] as Episode).path;
      curve.push({
        episodes: p.episodes,
        meanReward: p.meanReward,
        greedyMatch: matchFraction(greedy, target),
      });
      if (samePath(greedy, target)) {
        foundAt = p.episodes;
        return true;
      }
      return false;
    },
  });
  return { seed: options.seed, foundAt, curve, seconds: (Date.now() - started) / 1000 };
}

export interface AmortisedExperimentOptions extends TargetExperimentOptions {
  /** Number of objectives K, each with its own target path. */
  readonly objectives?: number;
  /** Unseen test preferences. */
  readonly testPreferences?: number;
}

export interface AmortisedExperimentResult {
  readonly seed: number;
  readonly curve: { episodes: number; meanReward: number }[];
  /** Per test preference: the preference, the index of the target it favours, whether the greedy path is it. */
  readonly tests: { preference: number[]; expectedTarget: number; match: number; correct: boolean }[];
  readonly seconds: number;
}

/**
 * One amortised policy (w in the state) trained on Dirichlet preferences over K targets; then, with no
 * retraining, the greedy path for unseen preferences must be the target of the largest weight (the
 * weighted-sum optimum when the targets differ at every position).
 */
export async function runAmortisedExperiment(
  options: AmortisedExperimentOptions,
): Promise<AmortisedExperimentResult> {
  const started = Date.now();
  const rng = new Rng(2000 + options.seed);
  const T = options.tMax ?? 8;
  const K = options.objectives ?? 3;
  const pool = syntheticPool(options.models ?? 4, options.layers ?? 8, rng);
  const targets: PathStep[][] = [];
  while (targets.length < K) {
    const t = TargetPathEnvironment.randomTargets(pool, 1, T, rng)[0] as PathStep[];
    if (targets.every((o) => matchFraction(t, o) === 0)) targets.push(t);
  }
  const env = new TargetPathEnvironment(pool, targets);
  const policy = new PathPolicy(pool, {
    // K targets to find: the epsilon decay runs twice as long as for one.
    epsilonDecayEpisodes: 3000,
    ...options.settings,
    tMax: T,
    objectives: K,
    amortised: true,
    seed: options.seed,
  });
  const curve: { episodes: number; meanReward: number }[] = [];
  await trainPolicy(policy, env, {
    episodes: options.episodes ?? 8000,
    episodesPerUpdate: options.episodesPerUpdate ?? 8,
    seed: options.seed + 17,
    onUpdate: (p) => {
      curve.push({ episodes: p.episodes, meanReward: p.meanReward });
    },
  });
  const testRng = new Rng(9000 + options.seed);
  const tests: AmortisedExperimentResult['tests'] = [];
  while (tests.length < (options.testPreferences ?? 5)) {
    const w = testRng.dirichlet(K);
    const sorted = [...w].sort((a, b) => b - a);
    if ((sorted[0] as number) - (sorted[1] as number) < 0.1) continue; // a clear favourite
    const expected = w.indexOf(sorted[0] as number);
    const path = (policy.propose([w], 'greedy')[0] as Episode).path;
    const match = matchFraction(path, targets[expected] as PathStep[]);
    tests.push({ preference: w, expectedTarget: expected, match, correct: match === 1 });
  }
  return { seed: options.seed, curve, tests, seconds: (Date.now() - started) / 1000 };
}
