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
  tiesMergeRawParallel,
  topKMaskParallel,
  allocShared,
  type FloatArray,
  type FloatDType,
  type KernelMemory,
  type TiesBand,
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
 * Whether tiesMergeRawOnPool covers these options and parameters: TIES proper (magnitude top-k, the
 * sign consensus, no rescale), per-tensor trimming, f32 compute.
 */
export function tiesRawOnPoolSupports(
  options: GtaOptions,
  input: Pick<MethodInput, 'params' | 'context'>,
  compute: 'F32' | 'F64',
): boolean {
  return (
    compute === 'F32' &&
    options.sparsification === 'magnitude' &&
    options.consensus &&
    (input.params['rescale'] ?? 'none') === 'none' &&
    gtaOnPoolSupports(options, input)
  );
}

export interface TiesRawInput {
  /** The raw little-endian bytes of the base, then of each model (n elements each), shared. */
  readonly raw: readonly Uint8Array[];
  readonly dtypes: readonly FloatDType[];
  readonly n: number;
  readonly models: readonly Pick<MethodInput['models'][number], 'id' | 'params'>[];
  readonly params: MethodInput['params'];
  readonly context: MethodInput['context'];
  /** Written: the merged tensor encoded as `outDtype`, shared. */
  readonly outRaw: Uint8Array;
  readonly outDtype: FloatDType;
  /** Per range, per input: the first NaN/Inf index (-1 none), after the first pass; may throw. */
  readonly onDecoded?: (firsts: readonly (readonly number[])[]) => void;
  /** tiesThresholdBands of the inputs, if taken already (see tiesMergeRawParallel). */
  readonly bands?: readonly (TiesBand | null)[];
  /** The KernelMemory the raw bytes and outRaw may lie in (see tiesMergeRawParallel). */
  readonly memory?: KernelMemory;
}

/**
 * TIES of one whole tensor on `pool` from raw bytes to raw bytes (tiesMergeRawParallel: three passes
 * over the inputs' bytes, no decoded copy of any input): the bytes generalizedTaskArithmeticOnPool
 * followed by encoding to `outDtype` gives, for the options tiesRawOnPoolSupports accepts.
 */
export async function tiesMergeRawOnPool(pool: WorkerPool, input: TiesRawInput): Promise<void> {
  const { n, models, params, context } = input;
  const keep = tiesKeepCounts(models, n);
  await tiesMergeRawParallel(pool, n, {
    raw: input.raw,
    dtypes: input.dtypes,
    keep,
    weights: models.map((m) => numberParam(m.params, 'weight', `${m.id}:${context.name}`)),
    normalize: params['normalize'] === true,
    lambda: typeof params['lambda'] === 'number' ? params['lambda'] : 1,
    outRaw: input.outRaw,
    outDtype: input.outDtype,
    ...(input.onDecoded === undefined ? {} : { onDecoded: input.onDecoded }),
    ...(input.bands === undefined ? {} : { bands: input.bands }),
    ...(input.memory === undefined ? {} : { memory: input.memory }),
  });
}

/** Per model, how many task-vector entries TIES keeps of n (density * n rounded down; null: all). */
export function tiesKeepCounts(
  models: readonly Pick<MethodInput['models'][number], 'params'>[],
  n: number,
): (number | null)[] {
  return models.map((m) => {
    const density = typeof m.params['density'] === 'number' ? m.params['density'] : 1;
    return density >= 1 ? null : Math.floor(density * n);
  });
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
