import { allocLike } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

export const ram: MergeMethod = {
  name: 'ram',
  description:
    'RAM (Reinforced Agent Merging): per element, a task-vector entry that only one model changes ' +
    '(|delta| > epsilon) is kept whole; entries several models change are averaged over those models.',
  reference: 'https://arxiv.org/abs/2601.13572',
  base: 'required',
  models: { min: 1 },
  params: [
    {
      name: 'epsilon',
      kind: 'number',
      scope: 'global',
      default: 1e-5,
      min: 0,
      max: 1e6,
      description: 'An entry counts as changed by a model when |delta| > epsilon.',
    },
  ],
  elementwise: () => true,
  merge({ base, models, params, context }) {
    if (base === null)
      throw new InvalidArgumentError(`tensor ${context.name}: ram needs a base model`, {
        tensor: context.name,
      });
    const epsilon = typeof params['epsilon'] === 'number' ? params['epsilon'] : 1e-5;
    const out = allocLike(base);
    for (let i = 0; i < base.length; i++) {
      let sum = 0;
      let count = 0;
      for (const m of models) {
        const d = m.tensor[i]! - base[i]!;
        if (Math.abs(d) > epsilon) {
          sum += d;
          count++;
        }
      }
      out[i] = base[i]! + (count > 1 ? sum / count : sum);
    }
    return out;
  },
};
