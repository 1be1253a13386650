/** ParetoOptimizerService over gRPC: a thin adapter from the wire types to ParetoOptimizer. */
import { InvalidArgumentError } from '@hm3/errors';
import type { optimizer } from '@hm3/proto';
import { policy } from '@hm3/proto';
import type { ServiceHandlers } from '@hm3/service-kit';
import type { ParetoOptimizer } from './optimizer.js';

export function optimizerHandlers(
  core: ParetoOptimizer,
): ServiceHandlers<typeof optimizer.ParetoOptimizerServiceService> {
  return {
    startSearch: async (request) => ({ searchId: await core.startSearch(request.spec, request.searchId) }),

    watchSearch: (request, context) => core.watch(request.searchId, context.signal),

    getFront: async (request) => ({ front: await core.front(request.searchId, request.round) }),

    recommend: async (request) => {
      const weights = request.preference?.weights ?? [];
      if (weights.length === 0)
        throw new InvalidArgumentError('preference: one weight per objective is required', {
          field: 'preference',
        });
      const scalarization =
        request.scalarization === policy.Scalarization.WEIGHTED_SUM
          ? 'weighted-sum'
          : request.scalarization === policy.Scalarization.TCHEBYCHEFF
            ? 'tchebycheff'
            : undefined;
      return core.recommend(request.searchId, weights, scalarization);
    },

    cancelSearch: async (request) => ({ status: await core.cancel(request.searchId, request.reason) }),

    listSearches: (request) => core.list(request.pageSize, request.pageToken, request.state),
  };
}
