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

export const dareLinear: MergeMethod = {
  name: 'dare_linear',
  description:
    'DARE: drop each task-vector entry with probability 1 - density (seeded), rescale, weighted sum.',
  reference: 'https://arxiv.org/abs/2311.03099',
  base: 'required',
  models: { min: 1 },
  params: [
    weightParam,
    densityParam('Keep probability of each task-vector entry.'),
    normalizeParam(false, 'Divide the weighted sum by the sum of the weights.'),
    lambdaParam,
    rescaleParam('l1'),
    int8MaskParam,
  ],
  // masks are per element; only the l1 rescale needs whole-tensor norms
  elementwise: ({ params, models }) => allDense(models) || params['rescale'] !== 'l1',
  merge: (input) => generalizedTaskArithmetic(input, { sparsification: 'bernoulli', consensus: false }),
};
