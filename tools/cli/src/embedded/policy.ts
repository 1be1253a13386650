/**
 * The policy port of the embedded search: @hm3/rl's PathPolicy (GRU state, Gaussian proto-action,
 * Wolpertinger pick among the M' nearest actions by the critic, PPO) over a LayerPool built from
 * the pool models' per-layer weight features.
 */
import { LayerPool, PathPolicy, type Episode } from '@hm3/rl';
import type { PathPolicyHandle, PolicyCreateSpec, PolicyPort, ProposedPath } from '@hm3/search';

export class LocalPolicies implements PolicyPort {
  create(spec: PolicyCreateSpec): Promise<PathPolicyHandle> {
    const pool = new LayerPool(
      spec.pool.map((m) => ({
        id: m.id,
        layers: m.layers,
        hiddenSize: m.hiddenSize,
        ...(m.layerFeatures ? { layerFeatures: m.layerFeatures } : {}),
      })),
    );
    const rl = spec.settings;
    const policy = new PathPolicy(pool, {
      tMax: spec.tMax,
      objectives: spec.objectives,
      amortised: spec.amortized,
      gruHidden: rl.hiddenSize,
      headHidden: rl.hiddenSize,
      modelEmbedding: rl.embeddingSize,
      layerEmbedding: rl.embeddingSize,
      mPrime: rl.nearestActions,
      epsilon: rl.exploration,
      gamma: rl.discount,
      lambda: rl.gaeLambda,
      clip: rl.clipRange,
      valueCoef: rl.valueCoef,
      entropyCoef: rl.entropyCoef,
      // proto/hm3/v1/policy.proto: learning_rate is the critic's and encoder's rate (the actor head
      // keeps its own), as the rl-policy service maps it (services/rl-policy/src/wire.ts)
      lr: rl.learningRate,
      epochs: rl.epochs,
      reward: { scalarisation: rl.rewardScalarization, beta: rl.lengthPenalty, ideal: [...spec.ideal] },
      seed: spec.seed,
    });
    const pending = new Map<number, Episode>();
    let next = 0;
    return Promise.resolve({
      propose: (preferences) => {
        const episodes = policy.propose(preferences, 'explore');
        return Promise.resolve(
          episodes.map((e): ProposedPath => {
            const id = next++;
            pending.set(id, e);
            return { episode: id, preference: e.preference, steps: e.path };
          }),
        );
      },
      learn: (ids, rewards, scores) => {
        const episodes = ids.map((id) => pending.get(id)!);
        ids.forEach((id) => pending.delete(id));
        if (episodes.length > 0) policy.update(episodes, rewards, scores);
        return Promise.resolve();
      },
      close: () => {
        pending.clear();
        return Promise.resolve();
      },
    });
  }
}
