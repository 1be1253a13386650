import { allocLike } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

function norm(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

export const karcher: MergeMethod = {
  name: 'karcher',
  description:
    'Karcher (Riemannian) mean of the models on the unit hypersphere, equal weights, by fixed-point ' +
    'iteration from the normalised arithmetic mean, scaled by the mean norm.',
  reference: 'https://en.wikipedia.org/wiki/Karcher_mean',
  base: 'none',
  models: { min: 1 },
  params: [
    {
      name: 'max_iter',
      kind: 'number',
      scope: 'global',
      default: 10,
      min: 1,
      max: 10000,
      description: 'Iterations of the fixed-point update at most.',
    },
    {
      name: 'tol',
      kind: 'number',
      scope: 'global',
      default: 1e-5,
      min: 0,
      max: 1,
      description: 'Stop when the tangent step is shorter; norms and angles below it count as zero.',
    },
  ],
  elementwise: () => false, // norms and angles of whole tensors
  merge({ models, params, context }) {
    const first = models[0];
    if (first === undefined)
      throw new InvalidArgumentError(`tensor ${context.name}: karcher needs at least one model`, {
        tensor: context.name,
      });
    const out = allocLike(first.tensor);
    if (models.length === 1) {
      out.set(first.tensor);
      return out;
    }
    const maxIter = Math.floor(typeof params['max_iter'] === 'number' ? params['max_iter'] : 10);
    const tol = typeof params['tol'] === 'number' ? params['tol'] : 1e-5;
    const n = first.tensor.length;
    const alphas = models.map(() => 1 / models.length);
    const norms: number[] = [];
    const units: Float64Array[] = [];
    for (const m of models) {
      const x = Float64Array.from(m.tensor);
      const nx = norm(x);
      norms.push(nx);
      units.push(nx === 0 ? new Float64Array(n) : x.map((v) => v / nx));
    }
    const valid = norms.map((v, i) => (v > tol ? i : -1)).filter((i) => i >= 0);
    if (valid.length === 0) return out; // zeros
    const alphaSum = valid.reduce((s, i) => s + alphas[i]!, 0);
    const a = valid.map((i) => alphas[i]! / alphaSum);
    const u = valid.map((i) => units[i]!);
    let mean = new Float64Array(n);
    u.forEach((ui, k) => {
      for (let i = 0; i < n; i++) mean[i] = mean[i]! + a[k]! * ui[i]!;
    });
    const m0 = norm(mean);
    mean = m0 < tol ? Float64Array.from(u[0]!) : mean.map((v) => v / m0);
    for (let iter = 0; iter < maxIter; iter++) {
      const tangent = new Float64Array(n);
      u.forEach((ui, k) => {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += mean[i]! * ui[i]!;
        dot = Math.min(1, Math.max(-1, dot));
        const theta = Math.acos(dot);
        if (theta < tol) return;
        const f = (a[k]! * theta) / Math.sin(theta);
        for (let i = 0; i < n; i++) tangent[i] = tangent[i]! + f * (ui[i]! - dot * mean[i]!);
      });
      const tn = norm(tangent);
      if (tn < tol) break;
      const c = Math.cos(tn);
      const s = Math.sin(tn) / tn;
      for (let i = 0; i < n; i++) mean[i] = c * mean[i]! + s * tangent[i]!;
      const un = norm(mean);
      if (un > tol) for (let i = 0; i < n; i++) mean[i] = mean[i]! / un;
    }
    const scale = alphas.reduce((s, al, k) => s + al * norms[k]!, 0);
    for (let i = 0; i < n; i++) out[i] = scale * mean[i]!;
    return out;
  },
};
