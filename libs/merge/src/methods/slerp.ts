import { allocLike, dot, weightedSum } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

/** mergekit's thresholds: colinear above this |cos|, and norms below eps are not divided by. */
const DOT_THRESHOLD = 0.9995;
const NORM_EPS = 1e-8;

export const slerp: MergeMethod = {
  name: 'slerp',
  description:
    'Spherical interpolation from the base (t = 0) to the other model (t = 1) along the great circle ' +
    'of the flattened, normalised tensors; plain lerp when |cos| > 0.9995.',
  reference: 'https://en.wikipedia.org/wiki/Slerp',
  base: 'required',
  models: { min: 1, max: 1 },
  params: [
    {
      name: 't',
      kind: 'number',
      scope: 'global',
      required: true,
      min: 0,
      max: 1,
      description: 'Interpolation factor: 0 gives the base, 1 the other model.',
    },
  ],
  elementwise: () => false, // the cosine between the whole tensors
  merge({ base, models, params, context }) {
    const other = models[0];
    if (base === null || other === undefined || models.length !== 1) {
      throw new InvalidArgumentError(
        `tensor ${context.name}: slerp merges exactly two models, the base and one other`,
        {
          tensor: context.name,
        },
      );
    }
    const t = params['t'];
    if (typeof t !== 'number')
      throw new InvalidArgumentError(`tensor ${context.name}: slerp needs t`, {
        tensor: context.name,
        field: 'parameters.t',
      });
    const v0 = base;
    const v1 = other.tensor;
    const n = v0.length;
    const n0 = Math.sqrt(dot({ a: v0, b: v0 }, 0, n));
    const n1 = Math.sqrt(dot({ a: v1, b: v1 }, 0, n));
    const cos = dot({ a: v0, b: v1 }, 0, n) / ((n0 > NORM_EPS ? n0 : 1) * (n1 > NORM_EPS ? n1 : 1));
    const out = allocLike(v0);
    if (Math.abs(cos) > DOT_THRESHOLD) {
      weightedSum({ out, inputs: [v0, v1], weights: [1 - t, t] }, 0, n);
      return out;
    }
    const theta0 = Math.acos(cos);
    const sin0 = Math.sin(theta0);
    const thetaT = theta0 * t;
    const s0 = Math.sin(theta0 - thetaT) / sin0;
    const s1 = Math.sin(thetaT) / sin0;
    weightedSum({ out, inputs: [v0, v1], weights: [s0, s1] }, 0, n);
    return out;
  },
};
