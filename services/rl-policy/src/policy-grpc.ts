/** PolicyService over gRPC: a thin adapter from the wire types to PolicyServiceCore. */
import { InvalidArgumentError } from '@hm3/errors';
import { policy } from '@hm3/proto';
import type { PolicySettingsInput, PoolModel } from '@hm3/rl';
import type { ServiceHandlers } from '@hm3/service-kit';
import type { PolicyServiceCore } from './policy-service.js';

/** Wire spec -> pool and settings; unset optional fields keep the lib's documented defaults. */
export function specFromWire(spec: policy.PolicySpec | undefined): {
  pool: PoolModel[];
  settings: PolicySettingsInput;
  poolRefs: unknown[];
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

export function policyHandlers(core: PolicyServiceCore): ServiceHandlers<typeof policy.PolicyServiceService> {
  return {
    createPolicy: async (request) => ({
      policyId: await core.createPolicy(request.policyId, specFromWire(request.spec)),
    }),

    proposePaths: async (request) => {
      const paths = await core.proposePaths(
        request.policyId,
        request.preference?.weights ?? [],
        request.count,
        request.greedy,
      );
      const pool = (await core.poolRefs(request.policyId)) as policy.PolicySpec['pool'];
      return {
        paths: paths.map((p) => ({
          episodeId: p.episodeId,
          path: { pool, steps: p.path.map((s) => ({ poolIndex: s.poolIndex, layerIndex: s.layerIndex })) },
        })),
      };
    },

    reportRewards: async (request) => {
      const { accepted, ignored } = await core.reportRewards(
        request.policyId,
        request.rewards.map((r) =>
          r.scores.length > 0
            ? { episodeId: r.episodeId, scores: r.scores.map((s) => s.value) }
            : { episodeId: r.episodeId, reward: r.reward },
        ),
      );
      return { accepted, ignoredEpisodeIds: ignored };
    },

    train: async function* (request) {
      let last: { iteration: number; meanReward: number } | undefined;
      let count = 0;
      for await (const e of core.train(request.policyId, request.iterations > 0 ? request.iterations : 1)) {
        last = e;
        count++;
        yield { event: { $case: 'progress' as const, value: e } };
      }
      yield {
        event: {
          $case: 'result' as const,
          value: { iterations: count, finalMeanReward: last?.meanReward ?? 0 },
        },
      };
    },

    exportPolicy: async (request) => {
      const { artifactId, sha256 } = await core.exportPolicyArtifact(request.policyId);
      return { artifactId, uri: `artifact://${artifactId}`, sha256 };
    },
  };
}
