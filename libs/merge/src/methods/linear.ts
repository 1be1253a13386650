import { allocLike, weightedSum } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';
import { normalizeParam, weightParam } from './common-params.js';
import { numberParam } from './generalized-task-arithmetic.js';

export const linear: MergeMethod = {
  name: 'linear',
  description: 'sum_k w_k theta_k, divided by sum_k w_k when normalize (a weighted average).',
  reference: 'https://arxiv.org/abs/2203.05482',
  base: 'none',
  models: { min: 1 },
  params: [weightParam, normalizeParam(true, 'Divide by the sum of the weights.')],
  elementwise: () => true,
  merge({ models, params, context }) {
    const first = models[0];
    if (first === undefined)
      throw new InvalidArgumentError(`tensor ${context.name}: linear needs at least one model`, {
        tensor: context.name,
      });
    const weights = models.map((m) => numberParam(m.params, 'weight', `${m.id}:${context.name}`));
    const total = weights.reduce((a, b) => a + b, 0);
    const normalize = params['normalize'] !== false;
    if (normalize && total === 0) {
      throw new InvalidArgumentError(`tensor ${context.name}: linear with normalize: the weights sum to 0`, {
        tensor: context.name,
        field: 'parameters.weight',
      });
    }
    const out = allocLike(first.tensor);
    weightedSum(
      { out, inputs: models.map((m) => m.tensor), weights, scale: normalize ? 1 / total : 1 },
      0,
      out.length,
    );
    return out;
  },
};
