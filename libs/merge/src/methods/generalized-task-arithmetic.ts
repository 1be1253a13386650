import { allocLike, taskVectorSum, tiesMerge, weightedSum, type FloatArray } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MethodInput } from '../method.js';
import { sparsifyInPlace, type Rescale, type Sparsification } from './sparsify.js';

/** Every model keeps its whole task vector (density >= 1, the default): no sparsification happens. */
export function allDense(models: readonly { readonly params: Readonly<Record<string, unknown>> }[]): boolean {
  return models.every((m) => typeof m.params['density'] !== 'number' || m.params['density'] >= 1);
}

export interface GtaOptions {
  /** How each task vector is thinned first; null: not at all. */
  readonly sparsification: Sparsification | null;
  /** TIES sign election and disjoint merge ("sum" consensus); false: a plain weighted sum. */
  readonly consensus: boolean;
}

/** A resolved number parameter; the recipe layer has validated kinds, so a wrong one is a bug upstream. */
export function numberParam(params: Readonly<Record<string, unknown>>, name: string, where: string): number {
  const v = params[name];
  if (typeof v !== 'number')
    throw new InvalidArgumentError(`parameter "${name}" of ${where} is not a number`, {
      parameter: name,
      tensor: where,
    });
  return v;
}

function flagParam(params: Readonly<Record<string, unknown>>, name: string, fallback: boolean): boolean {
  const v = params[name];
  return typeof v === 'boolean' ? v : fallback;
}

/**
 * mergekit's generalized task arithmetic on one tensor: task vectors delta_k = theta_k - base, each
 * sparsified, weighted by w_k; then either
 *   consensus: elect the sign of sum w_k delta_k (>= 0 counts positive), keep the agreeing entries,
 *              mixed = sum of kept w_k delta_k, / sum of kept w_k (0 -> 1) when normalize;
 *   plain:     mixed = sum w_k delta_k, / sum w_k (|sum| < 1e-8 -> 1) when normalize;
 * and out = base + lambda * mixed.
 */
export function generalizedTaskArithmetic(input: MethodInput, options: GtaOptions): FloatArray {
  const { base, models, params, context } = input;
  if (base === null)
    throw new InvalidArgumentError(`tensor ${context.name}: this method needs a base model`, {
      tensor: context.name,
    });
  const n = base.length;
  const out = input.out !== undefined && input.out.length === n ? input.out : allocLike(base);
  if (models.length === 0) {
    out.set(base);
    return out;
  }
  const normalize = flagParam(params, 'normalize', false);
  const lambda = typeof params['lambda'] === 'number' ? params['lambda'] : 1;
  const rescale = (typeof params['rescale'] === 'string' ? params['rescale'] : 'none') as Rescale;
  const weights = models.map((m) => numberParam(m.params, 'weight', `${m.id}:${context.name}`));
  // della ranks within a row: the elements after the first dimension (a vector is one row).
  const shape = context.shape;
  const rowLength =
    shape === undefined || shape.length < 2 ? undefined : shape.slice(1).reduce((a, b) => a * b, 1);
  for (const m of models) {
    if (m.tensor.length !== n) {
      throw new InvalidArgumentError(
        `tensor ${context.name} of ${m.id} has ${m.tensor.length} elements, the base ${n}`,
        {
          tensor: context.name,
          model: m.id,
        },
      );
    }
  }
  if (options.sparsification === null && !options.consensus) {
    // plain task arithmetic: one pass, no task-vector arrays
    let divisor = weights.reduce((a, b) => a + b, 0);
    if (Math.abs(divisor) < 1e-8) divisor = 1;
    taskVectorSum(
      {
        out,
        base,
        models: models.map((m) => m.tensor),
        weights,
        scale: normalize ? lambda / divisor : lambda,
      },
      0,
      n,
    );
    return out;
  }
  // the task vectors, in the models' own arrays when the caller gives them up; one mask for all
  const mask = options.sparsification === null || allDense(models) ? undefined : new Uint8Array(n);
  const deltas = models.map((m) => {
    const x = m.tensor;
    const d = input.consumeInputs === true ? x : allocLike(base);
    for (let i = 0; i < n; i++) d[i] = x[i]! - base[i]!;
    if (options.sparsification !== null) {
      sparsifyInPlace(d, {
        method: options.sparsification,
        density: typeof m.params['density'] === 'number' ? m.params['density'] : 1,
        gamma: typeof m.params['gamma'] === 'number' ? m.params['gamma'] : 0,
        epsilon: typeof m.params['epsilon'] === 'number' ? m.params['epsilon'] : 0.15,
        ...(rowLength === undefined ? {} : { rowLength }),
        where: `${m.id}:${context.name}`,
        ...(context.globalTrim?.[m.id] === undefined ? {} : { global: context.globalTrim[m.id] }),
        rescale,
        seed: context.seed,
        stream: `${context.name}\u0000${m.id}`,
        indexOffset: context.elementOffset ?? 0,
        ...(mask === undefined ? {} : { mask }),
      });
    }
    return d;
  });

  if (options.consensus) {
    tiesMerge({ out, base, deltas, weights, normalize, lambda }, 0, n);
    return out;
  }
  let divisor = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(divisor) < 1e-8) divisor = 1;
  weightedSum(
    { out, inputs: deltas, weights, scale: normalize ? lambda / divisor : lambda, offset: base },
    0,
    n,
  );
  return out;
}
