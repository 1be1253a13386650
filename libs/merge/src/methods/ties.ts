import type { MergeMethod } from '../method.js';
import {
  densityParam,
  int8MaskParam,
  lambdaParam,
  normalizeParam,
  rescaleParam,
  trimScopeParam,
  weightParam,
} from './common-params.js';
import { allDense, generalizedTaskArithmetic } from './generalized-task-arithmetic.js';

export const ties: MergeMethod = {
  name: 'ties',
  description:
    'TIES: keep the floor(density * n) largest |delta| per model, elect the sign of the weighted sum, ' +
    'average the agreeing entries (disjoint merge).',
  reference: 'https://arxiv.org/abs/2306.01708',
  base: 'required',
  models: { min: 1 },
  params: [
    weightParam,
    densityParam('Fraction of the largest-magnitude entries of each task vector kept.'),
    normalizeParam(true, 'Divide by the sum of the weights of the agreeing models.'),
    lambdaParam,
    rescaleParam('none'),
    trimScopeParam,
    int8MaskParam,
  ],
  elementwise: ({ models }) => allDense(models), // else top-k per tensor
  gta: { sparsification: 'magnitude', consensus: true },
  merge: (input) => generalizedTaskArithmetic(input, { sparsification: 'magnitude', consensus: true }),
};
