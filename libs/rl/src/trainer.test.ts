import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { LayerPool } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import { AMORTISED_POLICY_DEFAULTS } from './settings.js';
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
    expect(
      new PathPolicy(pool, { tMax: 2, objectives: 2, amortised: true, preferenceCritic: false }).valueOutputs,
    ).toBe(1);
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

describe('learning-rate annealing', () => {
  it('annealLearningRates scales both rates by the share of the budget left, then restores 1', async () => {
    const policy = new PathPolicy(pool, { tMax: 2, seed: 2, gruHidden: 8, headHidden: 8 });
    const env = new TargetPathEnvironment(pool, [
      [
        { poolIndex: 0, layerIndex: 1 },
        { poolIndex: 1, layerIndex: 2 },
      ],
    ]);
    const seen: number[] = [];
    await trainPolicy(policy, env, {
      episodes: 16,
      episodesPerUpdate: 4,
      annealLearningRates: true,
      onUpdate: () => {
        seen.push(policy.learningRateScale);
      },
    });
    expect(seen).toEqual([1, 0.75, 0.5, 0.25]);
    expect(policy.learningRateScale).toBe(1);
  });
});

describe('amortised defaults, the per-objective actor and epsilon over the pool', () => {
  it('an amortised policy gets AMORTISED_POLICY_DEFAULTS where its input is silent; others do not', () => {
    const amortised = new PathPolicy(pool, { tMax: 2, objectives: 2, amortised: true });
    expect(amortised.settings).toMatchObject(AMORTISED_POLICY_DEFAULTS);
    expect(amortised.meanOutputs).toBe(2);
    const overridden = new PathPolicy(pool, {
      tMax: 2,
      objectives: 2,
      amortised: true,
      epsilonScope: 'candidates',
    });
    expect(overridden.settings.epsilonScope).toBe('candidates');
    expect(overridden.settings.preferenceActor).toBe(true);
    const single = new PathPolicy(pool, { tMax: 2 });
    expect(single.settings).toMatchObject({
      preferenceCritic: false,
      preferenceActor: false,
      epsilonScope: 'candidates',
      actorFollowCritic: 0,
    });
    expect(single.meanOutputs).toBe(1);
    expect(single.settings).toMatchObject({ followTarget: 'preference', objectiveValueCoef: 0 });
    // the per-objective defaults step back where the input turned off what they need...
    const oneMean = new PathPolicy(pool, { tMax: 2, objectives: 2, amortised: true, preferenceActor: false });
    expect(oneMean.settings).toMatchObject({ followTarget: 'preference', objectiveValueCoef: 1 });
    const tchebycheff = new PathPolicy(pool, {
      tMax: 2,
      objectives: 2,
      amortised: true,
      reward: { scalarisation: 'tchebycheff', beta: 0.01 },
    });
    expect(tchebycheff.settings).toMatchObject({ followTarget: 'objective', objectiveValueCoef: 0 });
    // ...but asking for them there is an error naming the field
    for (const [input, field] of [
      [{ preferenceActor: false, followTarget: 'objective' }, 'followTarget'],
      [{ reward: { scalarisation: 'tchebycheff', beta: 0.01 }, objectiveValueCoef: 1 }, 'objectiveValueCoef'],
    ] as const) {
      let error: unknown;
      try {
        new PathPolicy(pool, { tMax: 2, objectives: 2, amortised: true, ...input });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details).toMatchObject({ field });
    }
    expect(() => new PathPolicy(pool, { epsilonScope: 'all' as 'pool' })).toThrow(InvalidArgumentError);
    expect(() => new PathPolicy(pool, { preferenceActor: 1 as unknown as boolean })).toThrow(
      InvalidArgumentError,
    );
  });

  it('with preferenceActor the mean is w . the per-objective means: linear in w for the same state', () => {
    const policy = new PathPolicy(pool, {
      tMax: 2,
      objectives: 2,
      amortised: true,
      positionActionFeatures: false,
      seed: 5,
      gruHidden: 8,
      headHidden: 8,
    });
    // The heads also read w: zero the preference input's weights so that m(S) does not depend on it.
    const wIn = policy.params.byName.get('actor.hidden.weight')!;
    for (let r = wIn.rows - 2; r < wIn.rows; r++) wIn.data.fill(0, r * wIn.cols, (r + 1) * wIn.cols);
    const mu = (w: number[]) => policy.initialOutputs(w).mean;
    const [m0, m1, mid] = [mu([1, 0]), mu([0, 1]), mu([0.3, 0.7])];
    expect(m0.some((x, j) => Math.abs(x - m1[j]!) > 1e-3)).toBe(true);
    for (let j = 0; j < m0.length; j++) expect(mid[j]).toBeCloseTo(0.3 * m0[j]! + 0.7 * m1[j]!, 12);
  });

  it("epsilonScope 'pool' takes random steps outside the M' nearest; 'candidates' never does", () => {
    const big = new LayerPool([
      { id: 'a', layers: 6 },
      { id: 'b', layers: 6 },
      { id: 'c', layers: 6 },
    ]);
    const outside = (epsilonScope: 'pool' | 'candidates'): number => {
      // eps 1 throughout, the density at the sampled proto-action (so protos keep the proto).
      const policy = new PathPolicy(big, {
        tMax: 4,
        seed: 9,
        gruHidden: 8,
        headHidden: 8,
        mPrime: 2,
        epsilon: 1,
        epsilonStart: 1,
        logProbAt: 'proto',
        epsilonScope,
      });
      const D = big.embeddingDim;
      let count = 0;
      for (const e of policy.propose(
        Array.from({ length: 16 }, () => [1]),
        'explore',
      ))
        for (let t = 0; t < 4; t++) {
          const near = policy.nearestActions(e.protos.subarray(t * D, (t + 1) * D), 0, -1);
          if (!near.includes(e.actions[t]!)) count++;
        }
      return count;
    };
    expect(outside('candidates')).toBe(0);
    expect(outside('pool')).toBeGreaterThan(16);
  });
});

/**
 * The heads at the one-step look-ahead of every action of the pool from hidden state h at step t (with
 * preference w in the state, when given): row a is S' = (S_t, a).
 */
function lookAhead(policy: PathPolicy, h: Float64Array, t: number, w?: readonly number[]) {
  const A = policy.pool.size;
  const H = policy.settings.gruHidden;
  const acts = Array.from({ length: A }, (_, a) => a);
  const hs = new Float64Array(A * H);
  for (let a = 0; a < A; a++) hs.set(h, a * H);
  let prefs: Float64Array | undefined;
  if (w !== undefined) {
    prefs = new Float64Array(A * w.length);
    for (let a = 0; a < A; a++) prefs.set(w, a * w.length);
  }
  return policy.heads(
    policy.encodeStep(hs, acts),
    acts.map(() => t + 1),
    acts,
    prefs,
  );
}

/** The critic's one-step look-ahead path value of every action of the pool from hidden state h at step t. */
function lookAheadValues(policy: PathPolicy, h: Float64Array, t: number): Float64Array {
  return lookAhead(policy, h, t).pathValue;
}

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
        const v = lookAheadValues(policy, h, t);
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
        const v = lookAheadValues(policy, h, t);
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

describe("actor follows the critic, per objective (followTarget 'objective')", () => {
  it("records each objective's best action by its own value u_k, and the loss pulls each m_k to it", () => {
    const K = 2;
    const policy = new PathPolicy(pool, {
      tMax: 3,
      seed: 11,
      gruHidden: 8,
      headHidden: 8,
      mPrime: 2,
      objectives: K,
      amortised: true,
      actorFollowCritic: 100,
      followTarget: 'objective',
    });
    const A = pool.size;
    const D = pool.embeddingDim;
    const H = policy.settings.gruHidden;
    const w = [0.6, 0.4];
    const episodes = policy.propose([w, w, w, w], 'explore');
    // u_k of S' = (S_t, a) for every action a, with the episode's w in the state: [A, K]
    const objectiveLookAhead = (h: Float64Array, t: number): Float64Array =>
      lookAhead(policy, h, t, w).objectiveValues!;
    let differ = 0;
    for (const e of episodes) {
      expect(e.followActions).toHaveLength(3 * K);
      let h: Float64Array = new Float64Array(H);
      for (let t = 0; t < 3; t++) {
        const u = objectiveLookAhead(h, t);
        for (let k = 0; k < K; k++) {
          const f = e.followActions![t * K + k]!;
          for (let a = 0; a < A; a++) expect(u[f * K + k]!).toBeGreaterThanOrEqual(u[a * K + k]! - 1e-12);
        }
        if (e.followActions![t * K] !== e.followActions![t * K + 1]) differ++;
        h = policy.encodeStep(h, [e.actions[t]!]);
      }
    }
    // the two objectives' targets are not all the same action (else this test could not tell them apart)
    expect(differ).toBeGreaterThan(0);
    // Every episode starts in S_0 with the same w: one target per objective for step 0, and the update
    // moves each objective's own mean m_k(S_0) towards its target.
    const targets = Array.from({ length: K }, (_, k) => episodes[0]!.followActions![k]!);
    const dist = (): number[] => {
      const m = policy.heads(new Float64Array(H), [0], [A], Float64Array.from(w)).objectiveMeans!;
      return targets.map((f, k) => {
        let d = 0;
        for (let j = 0; j < D; j++) d += (m[k * D + j]! - pool.embeddings[f * D + j]!) ** 2;
        return d;
      });
    };
    const before = dist();
    policy.update(episodes, [0.5, 0.2, 0.9, 0.1]);
    const after = dist();
    for (let k = 0; k < K; k++) expect(after[k]!).toBeLessThan(before[k]!);
    expect(
      () => new PathPolicy(pool, { actorFollowCritic: 1, followTarget: 'objective', amortised: false }),
    ).toThrow(InvalidArgumentError);
  });
});

describe('per-objective values learnt from the scores (objectiveValueCoef)', () => {
  it('moves each u_k(S_0) towards its score minus beta x length, only when the scores are given', () => {
    const make = () =>
      new PathPolicy(pool, {
        tMax: 3,
        seed: 12,
        gruHidden: 8,
        headHidden: 8,
        objectives: 2,
        amortised: true,
        objectiveValueCoef: 10,
        valueCoef: 0,
        reward: { scalarisation: 'weighted-sum', beta: 0.01 },
      });
    const w = [0.5, 0.5];
    const u0 = (p: PathPolicy) =>
      p.heads(new Float64Array(p.settings.gruHidden), [0], [pool.size], Float64Array.from(w))
        .objectiveValues!;
    // objective 0 always scores 1, objective 1 always 0: targets 1 - 0.03 and -0.03
    const targets = [1 - 0.03, -0.03];
    const withScores = make();
    const before = u0(withScores);
    for (let i = 0; i < 5; i++) {
      const eps = withScores.propose([w, w, w, w]);
      withScores.update(
        eps,
        eps.map(() => 0.5 - 0.03),
        eps.map(() => [1, 0]),
      );
    }
    const after = u0(withScores);
    for (let k = 0; k < 2; k++)
      expect(Math.abs(after[k]! - targets[k]!)).toBeLessThan(Math.abs(before[k]! - targets[k]!));
    // without scores (valueCoef 0) nothing trains the critic's outputs
    const withoutScores = make();
    for (let i = 0; i < 2; i++) {
      const eps = withoutScores.propose([w, w]);
      withoutScores.update(
        eps,
        eps.map(() => 0.47),
      );
    }
    expect(u0(withoutScores)).toEqual(before);
    const eps = withScores.propose([w]);
    expect(() => withScores.update(eps, [0.4], [[1]])).toThrow(InvalidArgumentError);
    expect(() => withScores.update(eps, [0.4], [[1, Number.NaN]])).toThrow(InvalidArgumentError);
    expect(() => withScores.update(eps, [0.4], [])).toThrow(InvalidArgumentError);
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
