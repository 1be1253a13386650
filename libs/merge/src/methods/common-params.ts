import type { ParamSpec } from '../method.js';
import type { Rescale } from './sparsify.js';

export const weightParam: ParamSpec = {
  name: 'weight',
  kind: 'number',
  scope: 'model',
  required: true,
  description: "The model's weight in the sum (negative subtracts it).",
};

export function densityParam(description = 'Fraction of the task vector kept.'): ParamSpec {
  return { name: 'density', kind: 'number', scope: 'model', default: 1, min: 0, max: 1, description };
}

export const gammaParam: ParamSpec = {
  name: 'gamma',
  kind: 'number',
  scope: 'model',
  default: 0.01,
  min: 0,
  max: 1,
  description: 'Fraction of the largest-magnitude entries dropped as outliers.',
};

export function normalizeParam(defaultValue: boolean, description: string): ParamSpec {
  return { name: 'normalize', kind: 'boolean', scope: 'global', default: defaultValue, description };
}

export const lambdaParam: ParamSpec = {
  name: 'lambda',
  kind: 'number',
  scope: 'global',
  default: 1,
  min: -1e6,
  max: 1e6,
  description: 'Scale of the merged task vector added to the base.',
};

export function rescaleParam(defaultValue: Rescale): ParamSpec {
  return {
    name: 'rescale',
    kind: 'choice',
    scope: 'global',
    default: defaultValue,
    choices: ['l1', 'inverse_density', 'none'],
    booleanChoices: { true: 'l1', false: 'none' },
    description:
      "Rescale of the kept entries: 'l1' matches the L1 norm of the original delta (mergekit's rescale: true), " +
      "'inverse_density' divides by density (the DARE paper), 'none' (rescale: false).",
  };
}

export const int8MaskParam: ParamSpec = {
  name: 'int8_mask',
  kind: 'boolean',
  scope: 'global',
  default: false,
  description: 'Accepted for mergekit compatibility (a memory saving there); no effect on the result.',
};

export const epsilonParam: ParamSpec = {
  name: 'epsilon',
  kind: 'number',
  scope: 'model',
  default: 0.15,
  min: 0,
  max: 0.5,
  description:
    'DELLA: keep probabilities run from density - epsilon (smallest |delta| of a row) to density + epsilon (largest).',
};

/** Where magnitude ranks are taken: per tensor (mergekit) or over the whole model (FusionBench). */
export const trimScopeParam: ParamSpec = {
  name: 'scope',
  kind: 'choice',
  scope: 'global',
  default: 'tensor',
  choices: ['tensor', 'global'],
  description:
    "Where trimming ranks magnitudes: 'tensor' (per tensor, as mergekit) or 'global' (one threshold per model " +
    'over the whole model, as FusionBench; needs one density per model).',
};
