/** Mapping between the wire types of policy.proto and the domain types of PolicyServiceCore. */
import { InvalidArgumentError } from '@hm3/errors';
import { policy } from '@hm3/proto';
import type { common } from '@hm3/proto';
import type { PolicySettingsInput, PoolModel } from '@hm3/rl';
import type { EpisodeReward, ExportedPolicy, ProposedPath, TrainProgressEvent } from './policy-service.js';

/** Wire spec -> pool and settings; unset optional fields keep the lib's documented defaults. */
export function specFromWire(spec: policy.PolicySpec | undefined): {
  pool: PoolModel[];
  settings: PolicySettingsInput;
  poolRefs: { modelId: string; uri: string }[];
} {
  if (spec === undefined) throw new InvalidArgumentError('spec is required', { field: 'spec' });
  const pool = spec.pool.map((m, i) => ({
    id: m.modelId !== '' ? m.modelId : m.uri !== '' ? m.uri : `pool-${i}`,
    layers: spec.numLayers,
  }));
  const w = spec.settings ?? ({} as Partial<policy.RlSettings>);
  const settings: Record<string, unknown> = {
    tMax: spec.tMax,
    objectives: spec.numObjectives,
    seed: Number(spec.seed),
  };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) settings[key] = value;
  };
  set('mPrime', w.nearestActions);
  set('epsilon', w.exploration);
  set('gamma', w.discount);
  set('lambda', w.gaeLambda);
  set('clip', w.clipRange);
  set('valueCoef', w.valueCoef);
  set('entropyCoef', w.entropyCoef);
  set('lr', w.learningRate);
  set('gruHidden', w.hiddenSize);
  set('headHidden', w.hiddenSize);
  set('modelEmbedding', w.embeddingSize);
  set('layerEmbedding', w.embeddingSize);
  set('epochs', w.epochs);
  set('minibatch', w.minibatchSize);
  set('amortised', w.amortized);
  const reward: Record<string, unknown> = {};
  if (w.lengthPenalty !== undefined) reward['beta'] = w.lengthPenalty;
  if (w.rewardScalarization === policy.Scalarization.TCHEBYCHEFF) reward['scalarisation'] = 'tchebycheff';
  if (w.rewardScalarization === policy.Scalarization.WEIGHTED_SUM) reward['scalarisation'] = 'weighted-sum';
  if (Object.keys(reward).length > 0) settings['reward'] = reward;
  if (w.allowStop === true || w.alignLayers === true) {
    throw new InvalidArgumentError('allow_stop and align_layers are not supported yet', {
      field: w.allowStop === true ? 'settings.allow_stop' : 'settings.align_layers',
    });
  }
  return {
    pool,
    settings: settings as PolicySettingsInput,
    poolRefs: spec.pool.map((m) => ({ modelId: m.modelId, uri: m.uri })),
  };
}

/** Proposed paths on the wire: each an InferencePath over the pool as the caller named it. */
export function pathsToWire(
  paths: readonly ProposedPath[],
  pool: readonly common.ModelRef[],
): policy.ProposedPath[] {
  return paths.map((p) => ({
    episodeId: p.episodeId,
    path: {
      pool: [...pool],
      steps: p.path.map((s) => ({ poolIndex: s.poolIndex, layerIndex: s.layerIndex })),
    },
  }));
}

/** A reward with scores is scalarised by the service with the episode's preference; else `reward` as is. */
export function rewardsFromWire(rewards: readonly policy.EpisodeReward[]): EpisodeReward[] {
  return rewards.map((r) =>
    r.scores.length > 0
      ? { episodeId: r.episodeId, scores: r.scores.map((s) => s.value) }
      : { episodeId: r.episodeId, reward: r.reward },
  );
}

export function progressToWire(e: TrainProgressEvent): policy.TrainProgress {
  return {
    iteration: e.iteration - 1, // the wire counts from 0
    meanReward: e.meanReward,
    policyLoss: e.policyLoss,
    valueLoss: e.valueLoss,
    entropy: e.entropy,
    episodes: e.episodes,
  };
}

export function exportToWire(e: ExportedPolicy): policy.ExportPolicyResponse {
  return { artifactId: e.artifactId, uri: `artifact://${e.artifactId}`, sha256: e.sha256 };
}
