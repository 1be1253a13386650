import type { MergeMethod } from '../method.js';
import { int8MaskParam, lambdaParam, normalizeParam, weightParam } from './common-params.js';
import { generalizedTaskArithmetic } from './generalized-task-arithmetic.js';

export const taskArithmetic: MergeMethod = {
  name: 'task_arithmetic',
  description: 'base + lambda * sum_k w_k (theta_k - base), optionally divided by sum_k w_k.',
  reference: 'https://arxiv.org/abs/2212.04089',
  base: 'required',
  models: { min: 1 },
  params: [
    weightParam,
    normalizeParam(false, 'Divide the weighted sum by the sum of the weights.'),
    lambdaParam,
    int8MaskParam,
  ],
  elementwise: () => true,
  merge: (input) => generalizedTaskArithmetic(input, { sparsification: null, consensus: false }),
};
