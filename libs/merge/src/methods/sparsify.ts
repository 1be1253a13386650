import { absSum, applyMask, bernoulliMask, randomStream, topKMaskOf, type FloatArray } from '@hm3/tensor';

/** How a task vector is thinned before it is merged. */
export type Sparsification = 'magnitude' | 'bernoulli' | 'magnitude_outliers';

/** How the kept entries are rescaled: match the L1 norm (mergekit), divide by density (DARE paper), or not. */
export type Rescale = 'l1' | 'inverse_density' | 'none';

export interface SparsifyOptions {
  readonly method: Sparsification;
  /** Fraction of entries kept, in [0, 1]; >= 1 leaves the delta as it is (no rescale), as mergekit. */
  readonly density: number;
  /** magnitude_outliers: fraction of the largest entries dropped. */
  readonly gamma?: number;
  readonly rescale: Rescale;
  /** bernoulli: seed and stream name (tensor name + model id), so every model and tensor has its own mask. */
  readonly seed?: bigint;
  readonly stream?: string;
  /** bernoulli: absolute index of delta[0] in the whole tensor (row blocks); default 0. */
  readonly indexOffset?: number;
}

/** mergekit's threshold below which a norm is treated as zero and no rescale happens. */
const RESCALE_EPS = 1e-7;

/**
 * Thins `delta` in place (mergekit's sparsify):
 * - magnitude: keep the k = floor(density * n) largest |delta| (ties by lowest index);
 * - bernoulli: keep each entry with probability density (Philox, seeded per tensor and model);
 * - magnitude_outliers (breadcrumbs): drop the n_top = floor(gamma * n) largest and the
 *   n_bot = n - floor(density * n) - n_top smallest (n_top shrinks when n_bot < 0). Unlike mergekit,
 *   n_top = 0 drops no large entry instead of wiping the whole delta.
 * then rescales the kept entries.
 */
export function sparsifyInPlace(delta: FloatArray, options: SparsifyOptions): void {
  const { density } = options;
  if (density >= 1) return;
  const n = delta.length;
  const mask = new Uint8Array(n);
  switch (options.method) {
    case 'magnitude':
      topKMaskOf(delta, Math.floor(density * n), mask, 'assign');
      break;
    case 'bernoulli':
      bernoulliMask(
        {
          out: mask,
          stream: randomStream(options.seed ?? 0n, options.stream ?? ''),
          density,
          indexOffset: options.indexOffset ?? 0,
        },
        0,
        n,
      );
      break;
    case 'magnitude_outliers': {
      let nTop = Math.floor((options.gamma ?? 0) * n);
      let nBot = n - Math.floor(density * n) - nTop;
      if (nBot < 0) {
        nTop += nBot;
        nBot = 0;
      }
      topKMaskOf(delta, n - nBot, mask, 'assign');
      topKMaskOf(delta, nTop, mask, 'clear');
      break;
    }
  }
  let scale = 1;
  if (options.rescale === 'l1') {
    const before = absSum({ x: delta }, 0, n);
    const after = absSum({ x: delta, mask }, 0, n);
    if (before >= RESCALE_EPS && after >= RESCALE_EPS) scale = before / after;
  } else if (options.rescale === 'inverse_density' && density > 0) {
    scale = 1 / density;
  }
  applyMask({ x: delta, mask, scale }, 0, n);
}
