import { InvalidArgumentError } from '@hm3/errors';
import {
  absSumBothChunked,
  applyMask,
  bernoulliMask,
  keepTopKAbs,
  philox4x32,
  randomStream,
  topKMaskOf,
  type FloatArray,
  type RandomStream,
} from '@hm3/tensor';

/** How a task vector is thinned before it is merged. */
export type Sparsification = 'magnitude' | 'bernoulli' | 'magnitude_outliers' | 'della_magprune';

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
  /** della_magprune: half-width of the keep-probability range around density. */
  readonly epsilon?: number;
  /** della_magprune: elements per row (ranks are taken within a row); default: the whole delta. */
  readonly rowLength?: number;
  /** For error messages: the tensor and model. */
  readonly where?: string;
  /** scope: global: model-wide thresholds replace the per-tensor top-k (magnitude methods). */
  readonly global?: { readonly keepAbove: number | null; readonly dropAbove: number | null };
  /** Scratch for the keep-mask (at least delta.length bytes; its contents are overwritten); default: a new one. */
  readonly mask?: Uint8Array;
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
  if (options.method === 'magnitude' && options.global === undefined && options.rescale === 'none') {
    keepTopKAbs(delta, Math.floor(density * n)); // the mask and its application in one pass
    return;
  }
  const mask =
    options.mask !== undefined && options.mask.length >= n ? options.mask.subarray(0, n) : new Uint8Array(n);
  const global = options.global;
  if (global !== undefined && (options.method === 'magnitude' || options.method === 'magnitude_outliers')) {
    // FusionBench-style: one threshold over the whole model; entries tied with it are kept (>=)
    for (let i = 0; i < n; i++) {
      const a = Math.abs(delta[i]!);
      const keep =
        (global.keepAbove === null || a >= global.keepAbove) &&
        (global.dropAbove === null || a < global.dropAbove);
      mask[i] = keep ? 1 : 0;
    }
    applyMask({ x: delta, mask, scale: rescaleFactor(delta, mask, options) }, 0, n);
    return;
  }
  switch (options.method) {
    case 'della_magprune':
      if (density <= 0) {
        delta.fill(0);
        return;
      }
      dellaMask(delta, mask, options);
      break;
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
  applyMask({ x: delta, mask, scale: rescaleFactor(delta, mask, options) }, 0, n);
}

/** The factor the kept entries are multiplied by. */
function rescaleFactor(delta: FloatArray, mask: Uint8Array, options: SparsifyOptions): number {
  const n = delta.length;
  const { density } = options;
  let scale = 1;
  if (options.rescale === 'l1') {
    // fixed-size partial sums added in order: the pool's split of the same sums gives the same factor
    const [before, after] = absSumBothChunked({ x: delta, mask: mask.subarray(0, n) });
    if (before >= RESCALE_EPS && after >= RESCALE_EPS) scale = before / after;
  } else if (options.rescale === 'inverse_density' && density > 0) {
    scale = 1 / density;
  }
  return scale;
}

const TWO_POW_32 = 4294967296;

/**
 * DELLA's MagPrune (mergekit's della_magprune): within each row, entries ranked by |delta| ascending
 * (ties by lowest index first) get keep probability p = density - epsilon + 2 epsilon (rank - 1) / (cols - 1),
 * so the smallest entry gets density - epsilon and the largest density + epsilon (a one-column row:
 * density). The draw of element i is word (i mod 4) of Philox4x32-10 at counter floor(i/4) of the
 * (seed, tensor, model) stream, kept when word < p * 2^32 -- the same stream as DARE's masks.
 */
function dellaMask(delta: FloatArray, mask: Uint8Array, options: SparsifyOptions): void {
  const { density } = options;
  const epsilon = options.epsilon ?? 0.15;
  if (density + epsilon >= 1 || density - epsilon <= 0) {
    throw new InvalidArgumentError(
      `${options.where ?? 'della'}: epsilon ${epsilon} must keep density +/- epsilon inside (0, 1) (density ${density})`,
      { field: 'parameters.epsilon', tensor: options.where ?? '' },
    );
  }
  const n = delta.length;
  const cols = Math.max(1, Math.min(n, options.rowLength ?? n));
  const probs = new Float64Array(n);
  const order: number[] = [];
  for (let r0 = 0; r0 < n; r0 += cols) {
    const r1 = Math.min(n, r0 + cols);
    const len = r1 - r0;
    order.length = 0;
    for (let i = r0; i < r1; i++) order.push(i);
    order.sort((a, b) => Math.abs(delta[a]!) - Math.abs(delta[b]!) || a - b);
    for (let rank = 0; rank < len; rank++) {
      const norm = len > 1 ? rank / (len - 1) : 0.5;
      probs[order[rank]!] = density - epsilon + norm * 2 * epsilon;
    }
  }
  drawMask(mask, probs, randomStream(options.seed ?? 0n, options.stream ?? ''), options.indexOffset ?? 0);
}

/** mask[i] = 1 with probability probs[i], from the Philox stream at absolute index offset + i. */
function drawMask(mask: Uint8Array, probs: Float64Array, stream: RandomStream, offset: number): void {
  const words = new Uint32Array(4);
  const first = offset;
  const last = offset + mask.length;
  for (let b = Math.floor(first / 4); b * 4 < last; b++) {
    philox4x32(
      b >>> 0,
      Math.floor(b / TWO_POW_32) >>> 0,
      stream.stream0,
      stream.stream1,
      stream.key0,
      stream.key1,
      words,
    );
    const a0 = b * 4;
    for (let a = Math.max(a0, first); a < Math.min(a0 + 4, last); a++) {
      mask[a - offset] = words[a - a0]! < probs[a - offset]! * TWO_POW_32 ? 1 : 0;
    }
  }
}
