import { philox4x32, type RandomStream } from './philox.js';

export interface BernoulliMaskArgs {
  /** Written: 1 (keep) with probability `density`, else 0, for each element. */
  out: Uint8Array;
  stream: RandomStream;
  /** Keep probability in [0, 1]. */
  density: number;
  /** Absolute index of out[0] in the whole tensor (a row block); default 0. */
  indexOffset?: number;
}

const TWO_POW_32 = 4294967296;

/**
 * Bernoulli(density) keep-mask over [start, end). Element i draws word (i mod 4) of
 * Philox4x32-10(counter = (floor(i/4) low, floor(i/4) high, stream0, stream1), key = seed), and is kept
 * when word < density * 2^32, i being the absolute index (indexOffset + position in out). Depends only
 * on (seed, stream, i): identical for any split of the range or of the tensor into row blocks.
 */
export function bernoulliMask(args: BernoulliMaskArgs, start: number, end: number): void {
  const { out, stream, density } = args;
  if (!(density >= 0 && density <= 1))
    throw new RangeError(`bernoulliMask: density ${density} not in [0, 1]`);
  if (end <= start) return;
  const offset = args.indexOffset ?? 0;
  const threshold = density * TWO_POW_32;
  const words = new Uint32Array(4);
  const first = offset + start;
  const last = offset + end; // exclusive, absolute
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
    const from = Math.max(a0, first);
    const to = Math.min(a0 + 4, last);
    for (let a = from; a < to; a++) out[a - offset] = words[a - a0]! < threshold ? 1 : 0;
  }
}
