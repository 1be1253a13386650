import type { MergeMethod } from '../method.js';
import {
  densityParam,
  int8MaskParam,
  lambdaParam,
  normalizeParam,
  rescaleParam,
  weightParam,
} from './common-params.js';
import { allDense, generalizedTaskArithmetic } from './generalized-task-arithmetic.js';

export const dareTies: MergeMethod = {
  name: 'dare_ties',
  description: 'DARE random drop and rescale, then TIES sign election and disjoint merge.',
  reference: 'https://arxiv.org/abs/2311.03099',
  base: 'required',
  models: { min: 1 },
  params: [
    weightParam,
    densityParam('Keep probability of each task-vector entry.'),
    normalizeParam(false, 'Divide by the sum of the weights of the agreeing models.'),
    lambdaParam,
    rescaleParam('l1'),
    int8MaskParam,
  ],
  elementwise: ({ params, models }) => allDense(models) || params['rescale'] !== 'l1',
  gta: { sparsification: 'bernoulli', consensus: true },
  merge: (input) => generalizedTaskArithmetic(input, { sparsification: 'bernoulli', consensus: true }),
};
