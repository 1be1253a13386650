import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { policy } from '@hm3/proto';
import type { common } from '@hm3/proto';
import type { RpcContext } from '@hm3/service-kit';
import { createInMemoryStore, LocalArtifactStore } from '@hm3/store';
import { policyHandlers } from './policy-grpc.js';
import { specFromWire } from './wire.js';
import { PolicyServiceCore } from './policy-service.js';

const wireSpec: policy.PolicySpec = {
  pool: [
    { modelId: 'expert-a', uri: '' },
    { modelId: 'expert-b', uri: '' },
    { modelId: '', uri: 'artifact://merged' },
  ],
  numLayers: 4,
  tMax: 3,
  numObjectives: 2,
  settings: {
    nearestActions: 4,
    amortized: true,
    hiddenSize: 16,
    rewardScalarization: policy.Scalarization.TCHEBYCHEFF,
  },
  seed: 7n,
};

describe('PolicyService wire mapping', () => {
  it('maps the spec, keeping lib defaults for unset settings', () => {
    const { pool, settings, poolRefs } = specFromWire(wireSpec);
    expect(pool.map((m) => m.id)).toEqual(['expert-a', 'expert-b', 'artifact://merged']);
    expect(settings).toMatchObject({
      tMax: 3,
      objectives: 2,
      seed: 7,
      mPrime: 4,
      amortised: true,
      gruHidden: 16,
      reward: { scalarisation: 'tchebycheff' },
    });
    expect(settings).not.toHaveProperty('epsilon');
    expect(poolRefs).toHaveLength(3);
    expect(() => specFromWire(undefined)).toThrow(/spec/);
  });

  it('handlers: create, propose (paths name the pool), report scores, train stream, export', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hm3-rl-grpc-'));
    const store = createInMemoryStore();
    await store.start();
    try {
      const h = policyHandlers(
        new PolicyServiceCore({ policies: store.policies, artifacts: new LocalArtifactStore(dir) }),
      );
      const ctx = {} as RpcContext;
      const { policyId } = await h.createPolicy({ policyId: 'wire-1', spec: wireSpec }, ctx);
      const { paths } = await h.proposePaths(
        { policyId, preference: { weights: [0.4, 0.6] }, count: 3, greedy: false },
        ctx,
      );
      expect(paths).toHaveLength(3);
      expect(paths[0]!.path!.pool.map((m) => m.modelId)).toEqual(['expert-a', 'expert-b', '']);
      expect(paths[0]!.path!.steps).toHaveLength(3);
      const scores = (v: number) =>
        [0, 1].map(
          (k) =>
            ({
              objective: `o${k}`,
              metric: 'accuracy',
              split: 0,
              value: v,
              stderr: 0,
            }) as unknown as common.Score,
        );
      const res = await h.reportRewards(
        {
          policyId,
          rewards: paths.map((p, i) => ({ episodeId: p.episodeId, scores: scores(i / 3), reward: 0 })),
        },
        ctx,
      );
      expect(res).toEqual({ accepted: 3, ignoredEpisodeIds: [] });
      const events: policy.TrainResponse[] = [];
      for await (const e of h.train({ policyId, iterations: 2 }, ctx)) events.push(e as policy.TrainResponse);
      expect(events.map((e) => e.event?.$case)).toEqual(['progress', 'progress', 'result']);
      const exported = await h.exportPolicy({ policyId }, ctx);
      expect(exported.uri).toBe(`artifact://${exported.artifactId}`);
      expect(exported.sha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
