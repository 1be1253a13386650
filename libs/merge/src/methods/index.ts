// The registered merge methods: adding one is a file in this folder plus one line here.
import type { MergeMethod } from '../method.js';
import { breadcrumbs } from './breadcrumbs.js';
import { breadcrumbsTies } from './breadcrumbs-ties.js';
import { dareLinear } from './dare-linear.js';
import { dareTies } from './dare-ties.js';
import { linear } from './linear.js';
import { slerp } from './slerp.js';
import { taskArithmetic } from './task-arithmetic.js';
import { ties } from './ties.js';

export const BUILTIN_METHODS: readonly MergeMethod[] = [
  linear,
  taskArithmetic,
  ties,
  dareLinear,
  dareTies,
  breadcrumbs,
  breadcrumbsTies,
  slerp,
];
