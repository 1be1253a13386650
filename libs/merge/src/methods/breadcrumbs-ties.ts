import type { MergeMethod } from '../method.js';
import { breadcrumbsParams } from './breadcrumbs.js';
import { allDense, generalizedTaskArithmetic } from './generalized-task-arithmetic.js';

export const breadcrumbsTies: MergeMethod = {
  name: 'breadcrumbs_ties',
  description: 'Model Breadcrumbs sparsification, then TIES sign election and disjoint merge.',
  reference: 'https://arxiv.org/abs/2312.06795',
  base: 'required',
  models: { min: 1 },
  params: breadcrumbsParams,
  elementwise: ({ models }) => allDense(models),
  merge: (input) =>
    generalizedTaskArithmetic(input, { sparsification: 'magnitude_outliers', consensus: true }),
};
