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
