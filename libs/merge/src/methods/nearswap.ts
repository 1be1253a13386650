import { allocLike } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

export const nearswap: MergeMethod = {
  name: 'nearswap',
  description:
    'NearSwap: per element, move from the base toward the other model by min(1, t / |base - other|): ' +
    'values that already agree within t take the other model, distant ones stay near the base.',
  reference: 'https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001',
  base: 'required',
  models: { min: 1, max: 1 },
  params: [
    {
      name: 't',
      kind: 'number',
      scope: 'global',
      required: true,
      min: Number.MIN_VALUE,
      max: 1e6,
      description: 'The sameness threshold (> 0).',
    },
  ],
  elementwise: () => true,
  merge({ base, models, params, context }) {
    const other = models[0];
    if (base === null || other === undefined || models.length !== 1) {
      throw new InvalidArgumentError(
        `tensor ${context.name}: nearswap merges exactly two models, the base and one other`,
        { tensor: context.name },
      );
    }
    const t = params['t'];
    if (typeof t !== 'number' || !(t > 0))
      throw new InvalidArgumentError(`tensor ${context.name}: nearswap needs t > 0 (got ${String(t)})`, {
        tensor: context.name,
        field: 'parameters.t',
      });
    const out = allocLike(base);
    const v1 = other.tensor;
    for (let i = 0; i < base.length; i++) {
      const raw = t / Math.abs(base[i]! - v1[i]!);
      const w = Number.isFinite(raw) ? Math.min(1, Math.max(0, raw)) : 1; // nan_to_num(..., 1), clamp
      out[i] = w * v1[i]! + (1 - w) * base[i]!;
    }
    return out;
  },
};
