import type { MergeMethod } from '../method.js';
import {
  densityParam,
  gammaParam,
  int8MaskParam,
  lambdaParam,
  normalizeParam,
  rescaleParam,
  trimScopeParam,
  weightParam,
} from './common-params.js';
import { allDense, generalizedTaskArithmetic } from './generalized-task-arithmetic.js';

export const breadcrumbsParams = [
  weightParam,
  densityParam('Fraction of each task vector kept after dropping outliers and small entries.'),
  gammaParam,
  normalizeParam(false, 'Divide the weighted sum by the sum of the weights.'),
  lambdaParam,
  rescaleParam('none'),
  trimScopeParam,
  int8MaskParam,
];

export const breadcrumbs: MergeMethod = {
  name: 'breadcrumbs',
  description:
    'Model Breadcrumbs: drop the floor(gamma * n) largest and the smallest entries of each task vector ' +
    '(keeping floor(density * n)), weighted sum. floor(gamma * n) = 0 drops no outlier (mergekit wipes the delta).',
  reference: 'https://arxiv.org/abs/2312.06795',
  base: 'required',
  models: { min: 1 },
  params: breadcrumbsParams,
  elementwise: ({ models }) => allDense(models), // else magnitude ranks per tensor
  merge: (input) =>
    generalizedTaskArithmetic(input, { sparsification: 'magnitude_outliers', consensus: false }),
};
