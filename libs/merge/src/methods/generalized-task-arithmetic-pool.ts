/**
 * generalizedTaskArithmetic for a whole tensor on the worker pool (ties, dare_ties: the methods that
 * need a whole-tensor statistic and so cannot be split into row blocks). The same steps as the
 * sequential form, each split over element ranges of shared arrays: the task vectors in place, the
 * top-k by radix select (histograms summed over ranges, ties by lowest index through per-range counts)
 * or the Bernoulli mask (keyed by absolute index), the rescale, then the fused sign election and
 * disjoint merge. Every step is element-wise or combines integer counts, and the L1 sums of the rescale
 * are taken on the calling thread in index order, so the bytes equal the sequential form's.
 */
import {
  addChunkSums,
  chunkAlignedRanges,
  keepTopKAbsParallel,
  L1_CHUNK,
  randomStream,
  topKMaskParallel,
  allocShared,
  type FloatArray,
  type WorkerPool,
} from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MethodInput } from '../method.js';
import { numberParam, type GtaOptions } from './generalized-task-arithmetic.js';

/** mergekit's threshold below which a norm is treated as zero and no rescale happens (as sparsify.ts). */
const RESCALE_EPS = 1e-7;

/**
 * Whether generalizedTaskArithmeticOnPool covers these options and parameters: magnitude or Bernoulli
 * sparsification with rescale none / l1 / inverse_density, per-tensor (not global) trimming.
 */
export function gtaOnPoolSupports(
  options: GtaOptions,
  input: Pick<MethodInput, 'params' | 'context'>,
): boolean {
  const rescale = input.params['rescale'] ?? 'none';
  return (
    (options.sparsification === 'magnitude' || options.sparsification === 'bernoulli') &&
    input.context.globalTrim === undefined &&
    (rescale === 'none' || rescale === 'l1' || rescale === 'inverse_density')
  );
}

/**
 * Merges one whole tensor on `pool`. `input.base`, the models' tensors and `out` must be shared
 * (SharedArrayBuffer) arrays; the models' arrays are overwritten (they become the task vectors).
 * `mask` is a shared scratch of at least n bytes. With `deltasReady` the models' arrays already hold
 * the task vectors (decodeDeltas took them while decoding). Returns `out`.
 */
export async function generalizedTaskArithmeticOnPool(
  pool: WorkerPool,
  input: MethodInput & { readonly out: FloatArray },
  options: GtaOptions,
  mask: Uint8Array,
  deltasReady = false,
): Promise<FloatArray> {
  const { base, models, params, context, out } = input;
  if (base === null)
    throw new InvalidArgumentError(`tensor ${context.name}: this method needs a base model`, {
      tensor: context.name,
    });
  const n = base.length;
  if (models.length === 0) {
    out.set(base);
    return out;
  }
  const normalize = params['normalize'] === true;
  const lambda = typeof params['lambda'] === 'number' ? params['lambda'] : 1;
  const rescale = typeof params['rescale'] === 'string' ? params['rescale'] : 'none';
  const weights = models.map((m) => numberParam(m.params, 'weight', `${m.id}:${context.name}`));
  const deltas: FloatArray[] = [];
  // per model, the factor its kept entries are multiplied by; applied in the merge pass (tiesMerge's
  // scales) or by applyMask before a plain weighted sum
  const scales: number[] = [];
  const keep = mask.subarray(0, n);
  const chunked = chunkAlignedRanges(n, pool.size, L1_CHUNK);
  for (const m of models) {
    if (m.tensor.length !== n) {
      throw new InvalidArgumentError(
        `tensor ${context.name} of ${m.id} has ${m.tensor.length} elements, the base ${n}`,
        { tensor: context.name, model: m.id },
      );
    }
    const d = m.tensor;
    if (!deltasReady) await pool.run('axpy', { y: d, x: base, alpha: -1 }, n); // d = x - base, rounded as a delta array
    deltas.push(d);
    scales.push(1);
    const density = typeof m.params['density'] === 'number' ? m.params['density'] : 1;
    if (density >= 1) continue;
    if (options.sparsification === 'magnitude' && rescale === 'none') {
      await keepTopKAbsParallel(pool, d, Math.floor(density * n));
      continue;
    }
    // the L1 norms before and after, as fixed-size partial sums (absSumBothChunked's definition)
    const sums = rescale === 'l1' ? allocShared(Float64Array, 2 * Math.ceil(n / L1_CHUNK)) : null;
    if (options.sparsification === 'magnitude') {
      await topKMaskParallel(pool, d, Math.floor(density * n), keep, 'assign');
      if (sums !== null) await pool.run('absSumChunks', { x: d, mask: keep, sums }, chunked);
      await pool.run('applyMask', { x: d, mask: keep, scale: 1 }, n);
    } else {
      // mask, sums and drop in one pass; the dropped entries are 0 afterwards
      const stream = randomStream(context.seed, `${context.name}\u0000${m.id}`);
      await pool.run(
        'dareMaskSums',
        {
          x: d,
          keep,
          stream,
          density,
          indexOffset: context.elementOffset ?? 0,
          sums: sums ?? allocShared(Float64Array, 2 * Math.ceil(n / L1_CHUNK)),
        },
        chunked,
      );
    }
    let scale = 1;
    if (sums !== null) {
      const [before, after] = addChunkSums(sums);
      if (before >= RESCALE_EPS && after >= RESCALE_EPS) scale = before / after;
    } else if (rescale === 'inverse_density' && density > 0) {
      scale = 1 / density;
    }
    scales[scales.length - 1] = scale;
  }
  if (options.consensus) {
    const fused = scales.some((s) => s !== 1) ? { scales } : {};
    await pool.run('tiesMerge', { out, base, deltas, weights, normalize, lambda, ...fused }, n);
    return out;
  }
  for (const [k, d] of deltas.entries())
    if (scales[k] !== 1) await pool.run('applyMask', { x: d, mask: keep.fill(1), scale: scales[k]! }, n);
  let divisor = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(divisor) < 1e-8) divisor = 1;
  await pool.run(
    'weightedSum',
    { out, inputs: deltas, weights, scale: normalize ? lambda / divisor : lambda, offset: base },
    n,
  );
  return out;
}
