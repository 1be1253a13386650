import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { LayerPool } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import { matchFraction, samePath, TargetPathEnvironment, trainPolicy } from './trainer.js';

const pool = new LayerPool([
  { id: 'a', layers: 3 },
  { id: 'b', layers: 3 },
]);

describe('TargetPathEnvironment', () => {
  it('scores each objective as the fraction of positions matching its target', () => {
    const env = new TargetPathEnvironment(pool, [
      [
        { poolIndex: 0, layerIndex: 1 },
        { poolIndex: 1, layerIndex: 2 },
      ],
      [
        { poolIndex: 1, layerIndex: 0 },
        { poolIndex: 1, layerIndex: 2 },
      ],
    ]);
    expect(
      env.evaluate([
        [
          { poolIndex: 0, layerIndex: 1 },
          { poolIndex: 1, layerIndex: 2 },
        ],
      ]),
    ).toEqual([[1, 0.5]]);
    expect(matchFraction([], [{ poolIndex: 0, layerIndex: 0 }])).toBe(0);
    expect(samePath([{ poolIndex: 0, layerIndex: 0 }], [{ poolIndex: 0, layerIndex: 0 }])).toBe(true);
    expect(() => new TargetPathEnvironment(pool, [[{ poolIndex: 2, layerIndex: 0 }]])).toThrow(
      InvalidArgumentError,
    );
  });
});

describe('GAE and PPO', () => {
  it('spreads R evenly over T steps: with gamma = lambda = 1 and zero values, A_t = R (T - t) / T', () => {
    const policy = new PathPolicy(pool, { tMax: 4, gamma: 1, lambda: 1 });
    const e = policy.propose([[1]])[0]!;
    const zeroed = { ...e, values: new Float64Array(4) };
    const { adv, ret } = policy.advantages(zeroed, 2);
    expect(Array.from(adv)).toEqual([2, 1.5, 1, 0.5]);
    expect(Array.from(ret)).toEqual([2, 1.5, 1, 0.5]);
    expect(policy.valueScale(0)).toBe(1);
    expect(policy.valueScale(4)).toBe(0);
  });

  it('an update changes the parameters, reports finite statistics, and is reproducible per seed', () => {
    const run = () => {
      const policy = new PathPolicy(pool, { tMax: 3, seed: 5, gruHidden: 8, headHidden: 8 });
      const eps = policy.propose([[1], [1], [1], [1]]);
      const before = Array.from(policy.logStd.data);
      const stats = policy.update(eps, [0.1, 0.9, 0.3, 0.5]);
      return { policy, before, stats };
    };
    const a = run();
    const b = run();
    expect(Array.from(a.policy.logStd.data)).not.toEqual(a.before);
    for (const v of Object.values(a.stats)) expect(Number.isFinite(v)).toBe(true);
    expect(a.stats).toEqual(b.stats);
  });

  it('trainPolicy checks the environment and the budget', async () => {
    const policy = new PathPolicy(pool, { tMax: 2, objectives: 2, amortised: true });
    const env1 = new TargetPathEnvironment(pool, [
      [
        { poolIndex: 0, layerIndex: 0 },
        { poolIndex: 0, layerIndex: 1 },
      ],
    ]);
    await expect(trainPolicy(policy, env1, { episodes: 8, episodesPerUpdate: 4 })).rejects.toThrow(
      /objectives/,
    );
    const env2 = new TargetPathEnvironment(pool, [
      [
        { poolIndex: 0, layerIndex: 0 },
        { poolIndex: 0, layerIndex: 1 },
      ],
      [
        { poolIndex: 1, layerIndex: 0 },
        { poolIndex: 1, layerIndex: 1 },
      ],
    ]);
    await expect(trainPolicy(policy, env2, { episodes: 0, episodesPerUpdate: 4 })).rejects.toThrow(
      /episodes/,
    );
    const curve = await trainPolicy(policy, env2, { episodes: 8, episodesPerUpdate: 4 });
    expect(curve.map((p) => p.episodes)).toEqual([4, 8]);
    const nanEnv = {
      objectives: 2,
      evaluate: () => [
        [Number.NaN, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    };
    await expect(trainPolicy(policy, nanEnv, { episodes: 4, episodesPerUpdate: 4 })).rejects.toThrow(
      InvalidArgumentError,
    );
  });
});

describe('actor log-std floor and the per-objective critic', () => {
  it('minLogStd holds after every update', () => {
    const policy = new PathPolicy(pool, { tMax: 3, seed: 3, gruHidden: 8, headHidden: 8, minLogStd: -0.5 });
    policy.logStd.data.fill(-0.5);
    for (let i = 0; i < 5; i++) policy.update(policy.propose([[1], [1], [1], [1]]), [0.9, 0.1, 0.9, 0.1]);
    expect(Math.min(...policy.logStd.data)).toBeGreaterThanOrEqual(-0.5);
    expect(() => new PathPolicy(pool, { minLogStd: Number.NaN })).toThrow(InvalidArgumentError);
  });

  it('an amortised policy with preferenceCritic values S as w . u(S): linear in w for the same state', () => {
    const policy = new PathPolicy(pool, {
      tMax: 2,
      objectives: 2,
      amortised: true,
      preferenceCritic: true,
      positionActionFeatures: false,
      seed: 4,
      gruHidden: 8,
      headHidden: 8,
    });
    expect(policy.valueOutputs).toBe(2);
    expect(new PathPolicy(pool, { tMax: 2, objectives: 2, amortised: true }).valueOutputs).toBe(1);
    // The heads also read w, so compare through the critic's own output: with the preference input
    // weights zeroed, u(S) no longer depends on w and the path value is exactly w . u.
    const wIn = policy.params.byName.get('critic.hidden.weight')!;
    const rows = wIn.rows;
    for (let r = rows - 2; r < rows; r++) wIn.data.fill(0, r * wIn.cols, (r + 1) * wIn.cols);
    const v = (w: number[]) => policy.initialOutputs(w).value;
    expect(v([0.5, 0.5])).toBeCloseTo((v([1, 0]) + v([0, 1])) / 2, 12);
    expect(v([0.2, 0.8])).toBeCloseTo(0.2 * v([1, 0]) + 0.8 * v([0, 1]), 12);
  });
});

describe('pool look-ahead while exploring', () => {
  it("poolLookAheadShare 1: every exploring step takes the critic's best of all valid actions", () => {
    const policy = new PathPolicy(pool, {
      tMax: 3,
      seed: 6,
      gruHidden: 8,
      headHidden: 8,
      poolLookAheadShare: 1,
    });
    const A = pool.size;
    const H = policy.settings.gruHidden;
    for (const e of policy.propose([[1], [1], [1]], 'explore')) {
      let h: Float64Array = new Float64Array(H);
      let last = A;
      for (let t = 0; t < 3; t++) {
        const acts = Array.from({ length: A }, (_, a) => a);
        const hs = new Float64Array(A * H);
        for (let a = 0; a < A; a++) hs.set(h, a * H);
        const v = policy.heads(
          policy.encodeStep(hs, acts),
          acts.map(() => t + 1),
          acts,
        ).pathValue;
        const chosen = e.actions[t]!;
        for (let a = 0; a < A; a++) expect(v[chosen]!).toBeGreaterThanOrEqual(v[a]! - 1e-12);
        h = policy.encodeStep(h, [chosen]);
        last = chosen;
      }
      expect(last).toBe(e.actions[2]);
    }
    expect(() => new PathPolicy(pool, { poolLookAheadShare: 1.5 })).toThrow(InvalidArgumentError);
  });
});

describe('actor follows the critic', () => {
  it("records the critic's best of all valid actions per exploring step, and the loss pulls the mean to it", () => {
    const policy = new PathPolicy(pool, {
      tMax: 3,
      seed: 7,
      gruHidden: 8,
      headHidden: 8,
      mPrime: 2,
      actorFollowCritic: 100,
    });
    const A = pool.size;
    const H = policy.settings.gruHidden;
    const episodes = policy.propose([[1], [1], [1], [1]], 'explore');
    for (const e of episodes) {
      expect(e.followActions).toHaveLength(3);
      let h: Float64Array = new Float64Array(H);
      for (let t = 0; t < 3; t++) {
        const acts = Array.from({ length: A }, (_, a) => a);
        const hs = new Float64Array(A * H);
        for (let a = 0; a < A; a++) hs.set(h, a * H);
        const v = policy.heads(
          policy.encodeStep(hs, acts),
          acts.map(() => t + 1),
          acts,
        ).pathValue;
        const f = e.followActions![t]!;
        for (let a = 0; a < A; a++) expect(v[f]!).toBeGreaterThanOrEqual(v[a]! - 1e-12);
        h = policy.encodeStep(h, [e.actions[t]!]);
      }
    }
    expect(policy.propose([[1]], 'greedy')[0]!.followActions).toBeUndefined();
    // Every episode starts in S_0: one target for step 0, and the update moves the mean towards it.
    const D = pool.embeddingDim;
    const f0 = episodes[0]!.followActions![0]!;
    const dist = () => {
      const mu = policy.initialOutputs([1]).mean;
      let d = 0;
      for (let j = 0; j < D; j++) d += (mu[j]! - pool.embeddings[f0 * D + j]!) ** 2;
      return d;
    };
    const before = dist();
    policy.update(episodes, [0.5, 0.2, 0.9, 0.1]);
    expect(dist()).toBeLessThan(before);
    expect(() => new PathPolicy(pool, { actorFollowCritic: -1 })).toThrow(InvalidArgumentError);
  });
});

describe('critic replay', () => {
  it('keeps at most replayEpisodes episodes and trains the critic from them', () => {
    const policy = new PathPolicy(pool, {
      tMax: 2,
      seed: 2,
      gruHidden: 8,
      headHidden: 8,
      replayEpisodes: 6,
      replayMinibatches: 2,
    });
    const before = policy.initialOutputs([1]).value;
    for (let i = 0; i < 3; i++) policy.update(policy.propose([[1], [1], [1], [1]]), [1, 1, 1, 1]);
    expect((policy as unknown as { replay: unknown[] }).replay).toHaveLength(6);
    // Every reward is 1: the path value of S_0 moves towards 1.
    expect(Math.abs(policy.initialOutputs([1]).value - 1)).toBeLessThan(Math.abs(before - 1));
  });
});
