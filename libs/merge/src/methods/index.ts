// The registered merge methods: adding one is a file in this folder plus one line here.
import type { MergeMethod } from '../method.js';
import { breadcrumbs } from './breadcrumbs.js';
import { breadcrumbsTies } from './breadcrumbs-ties.js';
import { dareLinear } from './dare-linear.js';
import { dareTies } from './dare-ties.js';
import { della } from './della.js';
import { dellaLinear } from './della-linear.js';
import { emr } from './emr.js';
import { karcher } from './karcher.js';
import { linear } from './linear.js';
import { modelStock } from './model-stock.js';
import { multislerp } from './multislerp.js';
import { nearswap } from './nearswap.js';
import { nuslerp } from './nuslerp.js';
import { passthrough } from './passthrough.js';
import { ram } from './ram.js';
import { sce } from './sce.js';
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
  della,
  dellaLinear,
  nuslerp,
  multislerp,
  karcher,
  modelStock,
  sce,
  nearswap,
  ram,
  passthrough,
  emr,
];
