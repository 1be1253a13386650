import type { MergeMethod } from '../method.js';
import {
  densityParam,
  epsilonParam,
  int8MaskParam,
  lambdaParam,
  normalizeParam,
  rescaleParam,
  trimScopeParam,
  weightParam,
} from './common-params.js';
import { allDense, generalizedTaskArithmetic } from './generalized-task-arithmetic.js';

export const dellaLinear: MergeMethod = {
  name: 'della_linear',
  description:
    'DELLA without sign election: MagPrune and rescale each task vector, then a weighted sum (task arithmetic).',
  reference: 'https://arxiv.org/abs/2406.11617',
  base: 'required',
  models: { min: 1 },
  params: [
    weightParam,
    densityParam('Mean keep probability of each task-vector entry.'),
    epsilonParam,
    normalizeParam(false, 'Divide the weighted sum by the sum of the weights.'),
    lambdaParam,
    rescaleParam('l1'),
    trimScopeParam,
    int8MaskParam,
  ],
  elementwise: ({ models }) => allDense(models),
  merge: (input) => generalizedTaskArithmetic(input, { sparsification: 'della_magprune', consensus: false }),
};
