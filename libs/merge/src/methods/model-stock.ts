import { allocLike } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

export const modelStock: MergeMethod = {
  name: 'model_stock',
  description:
    'Model Stock: interpolate between the base and the average of the models by ' +
    't = N cos / (1 + (N - 1) cos), cos the mean pairwise cosine of the task vectors (per tensor, or per row ' +
    'with filter_wise).',
  reference: 'https://arxiv.org/abs/2403.19522',
  base: 'required',
  models: { min: 2 },
  params: [
    {
      name: 'filter_wise',
      kind: 'boolean',
      scope: 'global',
      default: false,
      description: 'One t per row (the last dimension) instead of one per tensor.',
    },
  ],
  elementwise: () => false, // cosines over the tensor or its rows
  merge({ base, models, params, context }) {
    if (base === null || models.length < 2) {
      throw new InvalidArgumentError(
        `tensor ${context.name}: model_stock needs a base model and at least two others`,
        { tensor: context.name },
      );
    }
    const n = base.length;
    const shape = context.shape ?? [n];
    const rowLength = params['filter_wise'] === true && shape.length > 0 ? (shape[shape.length - 1] ?? n) : n;
    const N = models.length;
    const out = allocLike(base);
    for (let r0 = 0; r0 < n; r0 += Math.max(1, rowLength)) {
      const r1 = Math.min(n, r0 + Math.max(1, rowLength));
      let cosSum = 0;
      let pairs = 0;
      for (let a = 0; a < N; a++) {
        for (let b = a + 1; b < N; b++) {
          const xa = models[a]!.tensor;
          const xb = models[b]!.tensor;
          let aa = 0;
          let bb = 0;
          let ab = 0;
          for (let i = r0; i < r1; i++) {
            const da = xa[i]! - base[i]!;
            const db = xb[i]! - base[i]!;
            aa += da * da;
            bb += db * db;
            ab += da * db;
          }
          const cos = ab / Math.max(Math.sqrt(aa) * Math.sqrt(bb), 1e-6);
          cosSum += Math.min(1, Math.max(-1, cos));
          pairs++;
        }
      }
      const cos = cosSum / pairs;
      const t = (N * cos) / (1 + (N - 1) * cos);
      for (let i = r0; i < r1; i++) {
        let avg = 0;
        for (const m of models) avg += m.tensor[i]!;
        out[i] = (t * avg) / N + (1 - t) * base[i]!;
      }
    }
    return out;
  },
};
