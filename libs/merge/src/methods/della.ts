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

export const della: MergeMethod = {
  name: 'della',
  description:
    'DELLA: MagPrune (keep probability rising with |delta| rank within each row, density -/+ epsilon), ' +
    'rescale, then TIES sign election and disjoint merge.',
  reference: 'https://arxiv.org/abs/2406.11617',
  base: 'required',
  models: { min: 1 },
  params: [
    weightParam,
    densityParam('Mean keep probability of each task-vector entry.'),
    epsilonParam,
    normalizeParam(true, 'Divide by the sum of the weights of the agreeing models.'),
    lambdaParam,
    rescaleParam('l1'),
    trimScopeParam,
    int8MaskParam,
  ],
  elementwise: ({ models }) => allDense(models), // else ranks per row and an L1 norm per tensor
  merge: (input) => generalizedTaskArithmetic(input, { sparsification: 'della_magprune', consensus: true }),
};
