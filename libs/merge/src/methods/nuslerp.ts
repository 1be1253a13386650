import { allocLike, type FloatArray } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';
import { numberParam } from './generalized-task-arithmetic.js';

/** mergekit's thresholds: norms are clamped to at least NORM_EPS; |sin theta| < COLINEAR_EPS lerps. */
const NORM_EPS = 1e-7;
const COLINEAR_EPS = 1e-8;

/**
 * Spherical interpolation of each of `count` vectors (element j of vector v at start(v) + j * stride,
 * `length` elements) from a to b at t, written into out (mergekit's nuslerp on one row).
 */
function slerpVectors(
  a: FloatArray,
  b: FloatArray,
  out: FloatArray,
  t: number,
  count: number,
  length: number,
  start: (v: number) => number,
  stride: number,
): void {
  for (let v = 0; v < count; v++) {
    const s = start(v);
    let aa = 0;
    let bb = 0;
    let ab = 0;
    for (let j = 0, i = s; j < length; j++, i += stride) {
      const x = a[i]!;
      const y = b[i]!;
      aa += x * x;
      bb += y * y;
      ab += x * y;
    }
    const cos = ab / (Math.max(Math.sqrt(aa), NORM_EPS) * Math.max(Math.sqrt(bb), NORM_EPS));
    const theta = Math.acos(Math.min(1, Math.max(-1, cos)));
    const sin = Math.sin(theta);
    let wa: number;
    let wb: number;
    if (Math.abs(sin) < COLINEAR_EPS) {
      wa = 1 - t;
      wb = t;
    } else {
      wa = Math.sin((1 - t) * theta) / sin;
      wb = Math.sin(t * theta) / sin;
    }
    for (let j = 0, i = s; j < length; j++, i += stride) out[i] = wa * a[i]! + wb * b[i]!;
  }
}

export const nuslerp: MergeMethod = {
  name: 'nuslerp',
  description:
    'NuSLERP: spherical interpolation of two models (or of their task vectors against a base) at ' +
    't = w_2 / (w_1 + w_2), over the flattened tensor, its rows or its columns.',
  reference: 'https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md#nuslerp',
  base: 'optional',
  models: { min: 2, max: 2 },
  params: [
    {
      name: 'weight',
      kind: 'number',
      scope: 'model',
      required: true,
      description: "The model's weight; t = w_2 / (w_1 + w_2) (0.5 when the sum is ~0).",
    },
    {
      name: 'nuslerp_flatten',
      kind: 'boolean',
      scope: 'global',
      default: true,
      description: 'Interpolate the flattened tensor as one vector (false: row by row or column by column).',
    },
    {
      name: 'nuslerp_row_wise',
      kind: 'boolean',
      scope: 'global',
      default: false,
      description: 'Without flatten: interpolate column vectors (dimension 0) instead of rows.',
    },
  ],
  elementwise: () => false, // norms and angles over vectors
  merge({ base, models, params, context }) {
    const [m0, m1] = models;
    if (m0 === undefined || m1 === undefined || models.length !== 2) {
      throw new InvalidArgumentError(
        `tensor ${context.name}: nuslerp merges exactly two models (plus an optional base)`,
        { tensor: context.name },
      );
    }
    const w0 = numberParam(m0.params, 'weight', `${m0.id}:${context.name}`);
    const w1 = numberParam(m1.params, 'weight', `${m1.id}:${context.name}`);
    const t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
    const n = m0.tensor.length;
    let a = m0.tensor;
    let b = m1.tensor;
    if (base !== null) {
      a = allocLike(base);
      b = allocLike(base);
      for (let i = 0; i < n; i++) {
        a[i] = m0.tensor[i]! - base[i]!;
        b[i] = m1.tensor[i]! - base[i]!;
      }
    }
    const out = allocLike(m0.tensor);
    const shape = context.shape ?? [n];
    const last = shape.length === 0 ? 1 : shape[shape.length - 1]!;
    if (params['nuslerp_flatten'] !== false || shape.length < 2) {
      slerpVectors(a, b, out, t, 1, n, () => 0, 1);
    } else if (params['nuslerp_row_wise'] === true) {
      // vectors along dimension 0: for every other index, the elements i, i + inner, i + 2 inner, ...
      const rows = shape[0]!;
      const inner = n / rows;
      slerpVectors(a, b, out, t, inner, rows, (v) => v, inner);
    } else {
      slerpVectors(a, b, out, t, n / last, last, (v) => v * last, 1);
    }
    if (base !== null) for (let i = 0; i < n; i++) out[i] = out[i]! + base[i]!;
    return out;
  },
};
