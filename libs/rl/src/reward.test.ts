import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { LayerPool, layerWeightFeatures } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import { checkPreference, episodeReward } from './reward.js';
import { resolvePolicySettings } from './settings.js';

const pool = new LayerPool([
  { id: 'a', layers: 3 },
  { id: 'b', layers: 2 },
]);

describe('episodeReward', () => {
  it('weighted sum minus beta x length', () => {
    expect(
      episodeReward([0.5, 1], [0.25, 0.75], 4, { scalarisation: 'weighted-sum', beta: 0.01 }),
    ).toBeCloseTo(0.125 + 0.75 - 0.04, 12);
  });

  it('negated Tchebycheff distance to the ideal point minus beta x length', () => {
    const r = episodeReward([0.5, 0.9], [0.5, 0.5], 2, {
      scalarisation: 'tchebycheff',
      beta: 0.1,
      ideal: [1, 1],
    });
    expect(r).toBeCloseTo(-0.25 - 0.2, 12);
  });

  it('rejects NaN scores with a typed error naming the field', () => {
    const run = () =>
      episodeReward([Number.NaN, 1], [0.5, 0.5], 2, { scalarisation: 'weighted-sum', beta: 0 });
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(/score 0 is not finite/);
  });
});

describe('bad input is a typed error', () => {
  it('negative preferences', () => {
    expect(() => checkPreference([-0.1, 1.1], 2)).toThrow(InvalidArgumentError);
    const policy = new PathPolicy(pool, { objectives: 2, tMax: 2, amortised: true });
    try {
      policy.propose([[1.2, -0.2]]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details['field']).toBe('preference[1]');
    }
    expect(() => checkPreference([0, 0], 2)).toThrow(/all zero/);
    expect(() => checkPreference([1], 2)).toThrow(/objectives/);
    expect(checkPreference([2, 6], 2)).toEqual([0.25, 0.75]);
  });

  it('an empty pool', () => {
    expect(() => new LayerPool([])).toThrow(InvalidArgumentError);
    expect(() => new LayerPool([])).toThrow(/empty/);
    expect(() => new LayerPool([{ id: 'x', layers: 0 }])).toThrow(/at least 1/);
  });

  it('T_max of 0', () => {
    expect(() => resolvePolicySettings({ tMax: 0 })).toThrow(InvalidArgumentError);
    expect(() => new PathPolicy(pool, { tMax: 0 })).toThrow(/tMax must be a positive integer/);
  });

  it('NaN rewards', () => {
    const policy = new PathPolicy(pool, { tMax: 2 });
    const episodes = policy.propose([[1], [1]]);
    expect(() => policy.update(episodes, [0.5, Number.NaN])).toThrow(InvalidArgumentError);
    expect(() => policy.update(episodes, [0.5, Number.NaN])).toThrow(/rewards\[1\]|not finite/);
    expect(() => policy.update(episodes, [0.5])).toThrow(/2 episodes/);
  });

  it('other settings and pool fields', () => {
    expect(() => resolvePolicySettings({ epsilon: 1.5 })).toThrow(/epsilon/);
    expect(() => resolvePolicySettings({ mPrime: 0 })).toThrow(/mPrime/);
    expect(() => resolvePolicySettings({ replayEpisodes: -1 })).toThrow(/replayEpisodes/);
    expect(() => resolvePolicySettings({ actorLr: 0 })).toThrow(/actorLr/);
    expect(() => resolvePolicySettings({ epsilonStart: -0.1 })).toThrow(/epsilonStart/);
    expect(() => resolvePolicySettings({ epsilonDecayEpisodes: 1.5 })).toThrow(/epsilonDecayEpisodes/);
    expect(() => resolvePolicySettings({ advantageNorm: 'x' as 'step' })).toThrow(/advantageNorm/);
    expect(() => new LayerPool([{ id: 'a', layers: 1, layerFeatures: [[Number.NaN]] }])).toThrow(/finite/);
    expect(() => pool.actionOf({ poolIndex: 1, layerIndex: 2 })).toThrow(/no layer/);
    expect(() => layerWeightFeatures([[1, Number.POSITIVE_INFINITY]])).toThrow(/finite/);
  });
});

describe('LayerPool', () => {
  it('numbers actions model-major and embeds them as one-hot model, one-hot layer, features', () => {
    const p = new LayerPool([
      { id: 'a', layers: 2, layerFeatures: [[1], [3]] },
      { id: 'b', layers: 1, layerFeatures: [[2]] },
    ]);
    expect(p.size).toBe(3);
    expect(p.actionOf({ poolIndex: 1, layerIndex: 0 })).toBe(2);
    expect(p.stepOf(1)).toEqual({ poolIndex: 0, layerIndex: 1 });
    expect(p.embeddingDim).toBe(2 + 2 + 1);
    expect(Array.from(p.embeddings.subarray(10, 15)).slice(0, 4)).toEqual([0, 1, 1, 0]);
    const feats = Array.from(p.features);
    expect(feats.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 12);
    expect(layerWeightFeatures([[3, 4]])[0]).toBeCloseTo(Math.log1p(5), 12);
  });

  it('masks layers of another hidden size after a step', () => {
    const p = new LayerPool([
      { id: 'a', layers: 2, hiddenSize: 8 },
      { id: 'b', layers: 2, hiddenSize: 16 },
    ]);
    const policy = new PathPolicy(p, { tMax: 6, seed: 3 });
    for (const e of policy.propose(Array.from({ length: 20 }, () => [1]))) {
      const sizes = new Set(e.path.map((s) => (s.poolIndex === 0 ? 8 : 16)));
      expect(sizes.size).toBe(1);
    }
  });
});
