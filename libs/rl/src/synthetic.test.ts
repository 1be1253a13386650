import { describe, expect, it } from 'vitest';
import { runAmortisedExperiment, runTargetExperiment } from './synthetic.js';

// A reduced version of the acceptance problem (the full one, pool 4 x 8, T = 8, 10 seeds, is
// `npm run bench -- rl`; its seed 0 runs below too): pool 2 x 4, T = 4, a hidden target path; the greedy path must become the
// target, for 2 seeds, well before the budget; random guessing would need 8^4 = 4,096 tries.
describe('PPO on a hidden target path (reduced acceptance problem)', () => {
  for (const seed of [0, 1]) {
    it(`seed ${seed}: the greedy path becomes the target`, { timeout: 240_000 }, async () => {
      const r = await runTargetExperiment({
        seed,
        models: 2,
        layers: 4,
        tMax: 4,
        episodes: 1500,
        episodesPerUpdate: 8,
        settings: { gruHidden: 32, headHidden: 32, mPrime: 4 },
      });
      expect(r.foundAt).not.toBeNull();
      expect(r.foundAt!).toBeLessThanOrEqual(1500);
      expect(r.curve[r.curve.length - 1]!.greedyMatch).toBe(1);
    });
  }

  it(
    "the acceptance problem, seed 0: pool 4 x 8, T = 8, GRU 64, M' = 8, 4 epochs x 256: target within 3,000 episodes",
    {
      timeout: 600_000,
    },
    async () => {
      const r = await runTargetExperiment({ seed: 0, episodes: 3000, episodesPerUpdate: 8 });
      expect(r.foundAt).not.toBeNull();
      expect(r.foundAt!).toBeLessThanOrEqual(3000);
    },
  );
});

// The amortised acceptance problem (issue 10): one policy with w in its state, 3 targets disjoint at
// every position, trained on Dirichlet(1) preferences with the amortised defaults, 32 episodes per
// update; with no retraining its greedy path for each of 5 unseen preferences must be the target of
// the largest weight. `npm run bench -- rl --only amortised` runs more seeds.
describe('amortised policy (acceptance problem, seed 0)', () => {
  it('returns the right path for 5 unseen preferences', { timeout: 900_000 }, async () => {
    const r = await runAmortisedExperiment({ seed: 0, episodes: 8000, episodesPerUpdate: 32 });
    expect(r.tests).toHaveLength(5);
    expect(r.tests.map((t) => t.match)).toEqual([1, 1, 1, 1, 1]);
    // the unseen preferences favour at least two different targets
    expect(new Set(r.tests.map((t) => t.expectedTarget)).size).toBeGreaterThan(1);
  });
});
