/** PolicyService over gRPC: a thin adapter from the wire types (wire.ts) to PolicyServiceCore. */
import type { common, policy } from '@hm3/proto';
import type { ServiceHandlers } from '@hm3/service-kit';
import type { PolicyServiceCore } from './policy-service.js';
import { exportToWire, pathsToWire, progressToWire, rewardsFromWire, specFromWire } from './wire.js';

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
      const pool = (await core.poolRefs(request.policyId)) as common.ModelRef[];
      return { paths: pathsToWire(paths, pool) };
    },

    reportRewards: async (request) => {
      const { accepted, ignored } = await core.reportRewards(
        request.policyId,
        rewardsFromWire(request.rewards),
      );
      return { accepted, ignoredEpisodeIds: ignored };
    },

    train: async function* (request) {
      let last: { meanReward: number } | undefined;
      let count = 0;
      // iterations 0 (unset on the wire) is INVALID_ARGUMENT: there is no implicit default.
      for await (const e of core.train(request.policyId, request.iterations)) {
        last = e;
        count++;
        yield { event: { $case: 'progress' as const, value: progressToWire(e) } };
      }
      yield {
        event: {
          $case: 'result' as const,
          value: { iterations: count, finalMeanReward: last?.meanReward ?? 0 },
        },
      };
    },

    exportPolicy: async (request) => exportToWire(await core.exportPolicyArtifact(request.policyId)),
  };
}
