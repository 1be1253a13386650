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
import type { PolicySettings, PolicySettingsInput } from './settings.js';
import { episodeReward } from './reward.js';
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
  /**
   * Dirichlet concentration of the training preferences (default 1: uniform on the simplex; below 1,
   * more of them near the vertices and edges, where one target clearly pays most).
   */
  readonly trainingAlpha?: number;
  /** Also score the unseen preferences every this many training episodes (the curve's `correct`); 0: only at the end. */
  readonly evaluateEvery?: number;
  /**
   * Model selection: every `validateEvery` training episodes the greedy paths of this many validation
   * preferences (drawn from the training distribution with their own seed, never the test ones) are
   * scored by the environment, and the policy returned is the one with the best mean reward among
   * those checks (the PPO policy's greedy count rises and falls between checkpoints). 0: the last
   * policy. Default 32.
   */
  readonly validationPreferences?: number;
  /** Default 500 episodes. */
  readonly validateEvery?: number;
  /** trainPolicy's annealLearningRates (default false). */
  readonly annealLearningRates?: boolean;
}

export interface AmortisedExperimentResult {
  readonly seed: number;
  /** The policy's resolved settings and the training preferences' Dirichlet concentration. */
  readonly settings: PolicySettings;
  readonly trainingAlpha: number;
  readonly curve: { episodes: number; meanReward: number; correct?: number; validationReward?: number }[];
  /** The training episodes of the policy returned (model selection); the budget when there is none. */
  readonly selectedAt: number;
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
    // K targets to find: the epsilon decay runs twice as long as for one. The rest are the amortised
    // policy's own defaults (AMORTISED_POLICY_DEFAULTS, docs/method.md).
    epsilonDecayEpisodes: 3000,
    ...options.settings,
    tMax: T,
    objectives: K,
    amortised: true,
    seed: options.seed,
  });
  // The unseen preferences: drawn from their own seed (training draws from seed + 17), each with a
  // clear favourite (the largest weight leads the second by >= 0.1).
  const testRng = new Rng(9000 + options.seed);
  const testPrefs: { w: number[]; expected: number }[] = [];
  while (testPrefs.length < (options.testPreferences ?? 5)) {
    const w = testRng.dirichlet(K);
    const sorted = [...w].sort((a, b) => b - a);
    if ((sorted[0] as number) - (sorted[1] as number) < 0.1) continue;
    testPrefs.push({ w, expected: w.indexOf(sorted[0] as number) });
  }
  const score = (): AmortisedExperimentResult['tests'] => {
    const paths = policy.propose(
      testPrefs.map((p) => p.w),
      'greedy',
    );
    return testPrefs.map((p, i) => {
      const match = matchFraction((paths[i] as Episode).path, targets[p.expected] as PathStep[]);
      return { preference: p.w, expectedTarget: p.expected, match, correct: match === 1 };
    });
  };
  const every = options.evaluateEvery ?? 0;
  const curve: AmortisedExperimentResult['curve'] = [];
  let scoredBuckets = 0;
  const validationRng = new Rng(7000 + options.seed);
  const validation = Array.from({ length: options.validationPreferences ?? 32 }, () =>
    validationRng.dirichlet(K, options.trainingAlpha ?? 1),
  );
  const validateEvery = options.validateEvery ?? 500;
  let validatedBuckets = 0;
  let best: { reward: number; episodes: number; weights: Float64Array[] } | null = null;
  const validationReward = (): number => {
    const paths = policy.propose(validation, 'greedy').map((e) => e.path);
    const scores = env.evaluate(paths);
    const rewards = validation.map((w, i) =>
      episodeReward(scores[i] as number[], w, T, policy.settings.reward),
    );
    return rewards.reduce((a, b) => a + b, 0) / rewards.length;
  };
  await trainPolicy(policy, env, {
    episodes: options.episodes ?? 8000,
    episodesPerUpdate: options.episodesPerUpdate ?? 8,
    seed: options.seed + 17,
    samplePreference: (r) => r.dirichlet(K, options.trainingAlpha ?? 1),
    annealLearningRates: options.annealLearningRates ?? false,
    onUpdate: (p) => {
      const point: AmortisedExperimentResult['curve'][number] = {
        episodes: p.episodes,
        meanReward: p.meanReward,
      };
      // scored at the first update at or past each multiple of `every` (updates need not land on one)
      if (every > 0 && Math.floor(p.episodes / every) > scoredBuckets) {
        scoredBuckets = Math.floor(p.episodes / every);
        point.correct = score().filter((t) => t.correct).length;
      }
      if (validation.length > 0 && Math.floor(p.episodes / validateEvery) > validatedBuckets) {
        validatedBuckets = Math.floor(p.episodes / validateEvery);
        const reward = validationReward();
        point.validationReward = reward;
        if (best === null || reward > best.reward)
          best = { reward, episodes: p.episodes, weights: policy.params.list.map((t) => t.data.slice()) };
      }
      curve.push(point);
    },
  });
  const chosen = best as { reward: number; episodes: number; weights: Float64Array[] } | null;
  if (chosen !== null) policy.params.list.forEach((t, i) => t.data.set(chosen.weights[i] as Float64Array));
  const tests = score();
  return {
    seed: options.seed,
    selectedAt: chosen?.episodes ?? options.episodes ?? 8000,
    settings: policy.settings,
    trainingAlpha: options.trainingAlpha ?? 1,
    curve,
    tests,
    seconds: (Date.now() - started) / 1000,
  };
}
