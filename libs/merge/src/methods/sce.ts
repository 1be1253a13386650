import { allocLike, topKMaskOf } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';
import { int8MaskParam } from './common-params.js';

export const sce: MergeMethod = {
  name: 'sce',
  description:
    'SCE (select, calculate, erase): keep the select_topk fraction of positions with the largest variance ' +
    'across task vectors, weight each model by its mean squared delta, erase entries against the majority ' +
    'sign, weighted disjoint mean.',
  reference: 'https://arxiv.org/abs/2408.07990',
  base: 'required',
  models: { min: 1 },
  params: [
    {
      name: 'select_topk',
      kind: 'number',
      scope: 'global',
      default: 1,
      min: 0,
      max: 1,
      description: 'Fraction of the non-zero-variance positions kept (by variance across the task vectors).',
    },
    int8MaskParam,
  ],
  elementwise: () => false, // variance top-k and mean squared delta per tensor
  merge({ base, models, params, context }) {
    if (base === null)
      throw new InvalidArgumentError(`tensor ${context.name}: sce needs a base model`, {
        tensor: context.name,
      });
    const n = base.length;
    const out = allocLike(base);
    const K = models.length;
    if (K === 0) {
      out.set(base);
      return out;
    }
    const deltas = models.map((m) => {
      const d = new Float64Array(n);
      for (let i = 0; i < n; i++) d[i] = m.tensor[i]! - base[i]!;
      return d;
    });
    const topk = typeof params['select_topk'] === 'number' ? params['select_topk'] : 1;
    if (topk < 1) {
      // population variance across the models, per position
      const variance = new Float64Array(n);
      let nonZero = 0;
      for (let i = 0; i < n; i++) {
        let mean = 0;
        for (const d of deltas) mean += d[i]!;
        mean /= K;
        let v = 0;
        for (const d of deltas) v += (d[i]! - mean) ** 2;
        variance[i] = v / K;
        if (variance[i] !== 0) nonZero++;
      }
      const mask = new Uint8Array(n);
      const k = Math.floor(Math.abs(topk) * nonZero);
      if (k > 0) topKMaskOf(variance, k, mask, 'assign');
      for (const d of deltas) for (let i = 0; i < n; i++) if (mask[i] === 0) d[i] = 0;
    }
    let weights = deltas.map((d) => d.reduce((s, x) => s + x * x, 0) / n);
    const total = weights.reduce((a, b) => a + b, 0);
    weights = total === 0 ? weights.map(() => 1 / K) : weights.map((w) => w / total);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const d of deltas) sum += d[i]!;
      const majority = sum >= 0 ? 1 : -1;
      let mixed = 0;
      let divisor = 0;
      deltas.forEach((d, k) => {
        if (Math.sign(d[i]!) === majority) {
          mixed += weights[k]! * d[i]!;
          divisor += weights[k]!;
        }
      });
      out[i] = base[i]! + mixed / (divisor === 0 ? 1 : divisor);
    }
    return out;
  },
};
