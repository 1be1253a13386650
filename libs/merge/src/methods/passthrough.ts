import { allocLike } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

export const passthrough: MergeMethod = {
  name: 'passthrough',
  description:
    "One model's tensors as they are (optionally times scale); the method of slices (frankenmerges).",
  base: 'none',
  models: { min: 1, max: 1 },
  params: [
    {
      name: 'scale',
      kind: 'number',
      scope: 'model',
      default: 1,
      min: -1e6,
      max: 1e6,
      description: 'Multiplies the tensor; with a filter, scales chosen tensors only.',
    },
  ],
  elementwise: () => true,
  merge({ models, context }) {
    const only = models[0];
    if (only === undefined || models.length !== 1)
      throw new InvalidArgumentError(`tensor ${context.name}: passthrough takes exactly one model`, {
        tensor: context.name,
      });
    const out = allocLike(only.tensor);
    const scale = only.params['scale'];
    if (typeof scale === 'number') for (let i = 0; i < out.length; i++) out[i] = only.tensor[i]! * scale;
    else out.set(only.tensor);
    return out;
  },
};
