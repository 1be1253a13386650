/** The PPO training loop against an environment that scores paths, and the synthetic target-path problem. */
import { InvalidArgumentError } from '@hm3/errors';
import type { LayerPool, PathStep } from './layer-pool.js';
import type { PathPolicy, UpdateStats } from './path-policy.js';
import { Rng } from './random.js';
import { episodeReward } from './reward.js';

/** Scores paths on K objectives (higher is better). */
export interface PathEnvironment {
  readonly objectives: number;
  evaluate(paths: readonly (readonly PathStep[])[]): Promise<number[][]> | number[][];
}

export interface TrainOptions {
  /** Total training episodes. */
  readonly episodes: number;
  /** Episodes proposed per PPO update. */
  readonly episodesPerUpdate: number;
  /** Preference of each training episode; default: Dirichlet(1..1), or [1] for one objective. */
  readonly samplePreference?: (rng: Rng) => number[];
  readonly seed?: number;
  /**
   * Anneal both learning rates linearly from their settings to 0 over the budget (the scale before an
   * update is the share of the budget not yet trained on), so the last updates change the policy least.
   */
  readonly annealLearningRates?: boolean;
  /** Called after every update; return true to stop early. */
  readonly onUpdate?: (progress: TrainProgress) => boolean | void;
}

export interface TrainProgress {
  readonly update: number;
  readonly episodes: number;
  readonly meanReward: number;
  readonly bestReward: number;
  readonly stats: UpdateStats;
}

export async function trainPolicy(
  policy: PathPolicy,
  env: PathEnvironment,
  options: TrainOptions,
): Promise<TrainProgress[]> {
  const K = policy.settings.objectives;
  if (env.objectives !== K)
    throw new InvalidArgumentError(`environment has ${env.objectives} objectives, the policy ${K}`, {
      field: 'objectives',
    });
  if (!Number.isSafeInteger(options.episodes) || options.episodes <= 0)
    throw new InvalidArgumentError('episodes must be a positive integer', { field: 'episodes' });
  if (!Number.isSafeInteger(options.episodesPerUpdate) || options.episodesPerUpdate <= 0) {
    throw new InvalidArgumentError('episodesPerUpdate must be a positive integer', {
      field: 'episodesPerUpdate',
    });
  }
  const rng = new Rng(options.seed ?? policy.settings.seed + 1);
  const sample = options.samplePreference ?? ((r: Rng) => (K === 1 ? [1] : r.dirichlet(K)));
  const curve: TrainProgress[] = [];
  let done = 0;
  let update = 0;
  while (done < options.episodes) {
    const n = Math.min(options.episodesPerUpdate, options.episodes - done);
    const prefs = Array.from({ length: n }, () => sample(rng));
    const episodes = policy.propose(prefs, 'explore');
    const scores = await env.evaluate(episodes.map((e) => e.path));
    const rewards = episodes.map((e, i) =>
      episodeReward(scores[i] ?? [], e.preference, e.path.length, policy.settings.reward),
    );
    if (options.annealLearningRates === true) policy.learningRateScale = 1 - done / options.episodes;
    const stats = policy.update(episodes, rewards, scores);
    done += n;
    update++;
    const progress: TrainProgress = {
      update,
      episodes: done,
      meanReward: rewards.reduce((a, b) => a + b, 0) / n,
      bestReward: Math.max(...rewards),
      stats,
    };
    curve.push(progress);
    if (options.onUpdate?.(progress) === true) break;
  }
  policy.learningRateScale = 1;
  return curve;
}

/**
 * The synthetic problem with a known optimum: objective k scores a path by the fraction of positions
 * that match hidden target path k.
 */
export class TargetPathEnvironment implements PathEnvironment {
  readonly objectives: number;

  constructor(
    readonly pool: LayerPool,
    readonly targets: readonly (readonly PathStep[])[],
  ) {
    if (targets.length === 0) throw new InvalidArgumentError('no target paths', { field: 'targets' });
    for (const t of targets) for (const step of t) pool.actionOf(step);
    this.objectives = targets.length;
  }

  evaluate(paths: readonly (readonly PathStep[])[]): number[][] {
    return paths.map((p) => this.targets.map((target) => matchFraction(p, target)));
  }

  /** Random target paths, one per objective, each of length T. */
  static randomTargets(pool: LayerPool, count: number, T: number, rng: Rng): PathStep[][] {
    return Array.from({ length: count }, () =>
      Array.from({ length: T }, () => pool.stepOf(rng.int(pool.size))),
    );
  }
}

export function matchFraction(path: readonly PathStep[], target: readonly PathStep[]): number {
  let hits = 0;
  target.forEach((s, t) => {
    const p = path[t];
    if (p !== undefined && p.poolIndex === s.poolIndex && p.layerIndex === s.layerIndex) hits++;
  });
  return hits / target.length;
}

export function samePath(a: readonly PathStep[], b: readonly PathStep[]): boolean {
  return a.length === b.length && matchFraction(a, b) === 1;
}
