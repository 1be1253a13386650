import { allocLike } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';
import { numberParam } from './generalized-task-arithmetic.js';

export const multislerp: MergeMethod = {
  name: 'multislerp',
  description:
    'Multi-SLERP: barycentric interpolation of any number of models (or task vectors against a base) on ' +
    'the hypersphere: tangent space at the weighted mean of the unit tensors, exponential map back, ' +
    'scaled by the weighted mean norm.',
  reference: 'https://goddard.blog/posts/multislerp-wow-what-a-cool-idea',
  base: 'optional',
  models: { min: 1 },
  params: [
    {
      name: 'weight',
      kind: 'number',
      scope: 'model',
      required: true,
      description: "The model's barycentric weight.",
    },
    {
      name: 'normalize_weights',
      kind: 'boolean',
      scope: 'global',
      default: true,
      description: 'Divide the weights by their sum.',
    },
    {
      name: 'eps',
      kind: 'number',
      scope: 'global',
      default: 1e-8,
      min: 0,
      max: 1,
      description: 'Added to norms before dividing; a weighted mean of norm < eps is degenerate.',
    },
  ],
  elementwise: () => false, // norms over the whole tensor
  merge({ base, models, params, context }) {
    const first = models[0];
    if (first === undefined)
      throw new InvalidArgumentError(`tensor ${context.name}: multislerp needs at least one model`, {
        tensor: context.name,
      });
    const out = allocLike(first.tensor);
    if (models.length === 1) {
      out.set(first.tensor); // mergekit returns the single model as it is, even with a base
      return out;
    }
    const n = first.tensor.length;
    const eps = typeof params['eps'] === 'number' ? params['eps'] : 1e-8;
    let weights = models.map((m) => numberParam(m.params, 'weight', `${m.id}:${context.name}`));
    if (params['normalize_weights'] !== false) {
      const total = weights.reduce((a, b) => a + b, 0);
      weights = weights.map((w) => w / total);
    }
    const vectors = models.map((m) => {
      if (base === null) return Float64Array.from(m.tensor);
      const d = new Float64Array(n);
      for (let i = 0; i < n; i++) d[i] = m.tensor[i]! - base[i]!;
      return d;
    });
    const norms = vectors.map((v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)));
    const units = vectors.map((v, k) => v.map((x) => x / (norms[k]! + eps)));
    const mean = new Float64Array(n);
    units.forEach((u, k) => {
      for (let i = 0; i < n; i++) mean[i] = mean[i]! + weights[k]! * u[i]!;
    });
    const meanNorm = Math.sqrt(mean.reduce((s, x) => s + x * x, 0));
    const result = new Float64Array(n);
    if (meanNorm < eps) {
      if (models.length !== 2) {
        throw new InvalidArgumentError(
          `tensor ${context.name}: multislerp: the weighted sum of the unit tensors is zero ` +
            '(antipodal models with balancing weights); use different weights',
          { tensor: context.name },
        );
      }
      for (let i = 0; i < n; i++) result[i] = vectors[0]![i]! * weights[0]! + vectors[1]![i]! * weights[1]!;
    } else {
      for (let i = 0; i < n; i++) mean[i] = mean[i]! / meanNorm;
      const tangent = new Float64Array(n);
      units.forEach((u, k) => {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += u[i]! * mean[i]!;
        for (let i = 0; i < n; i++) tangent[i] = tangent[i]! + weights[k]! * (u[i]! - dot * mean[i]!);
      });
      const tangentNorm = Math.sqrt(tangent.reduce((s, x) => s + x * x, 0)) + eps;
      const avgNorm = norms.reduce((s, v, k) => s + v * weights[k]!, 0);
      const c = Math.cos(tangentNorm);
      const s = Math.sin(tangentNorm) / tangentNorm;
      for (let i = 0; i < n; i++) result[i] = (mean[i]! * c + tangent[i]! * s) * avgNorm;
    }
    for (let i = 0; i < n; i++) out[i] = result[i]! + (base === null ? 0 : base[i]!);
    return out;
  },
};
