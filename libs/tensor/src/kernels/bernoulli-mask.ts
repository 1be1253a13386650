import { philox4x32, type RandomStream } from './philox.js';

export interface BernoulliMaskArgs {
  /** Written: 1 (keep) with probability `density`, else 0, for each element. */
  out: Uint8Array;
  stream: RandomStream;
  /** Keep probability in [0, 1]. */
  density: number;
}

const TWO_POW_32 = 4294967296;

/**
 * Bernoulli(density) keep-mask over [start, end). Element i draws word (i mod 4) of
 * Philox4x32-10(counter = (floor(i/4) low, floor(i/4) high, stream0, stream1), key = seed), and is kept
 * when word < density * 2^32. Depends only on (seed, stream, i): identical for any split of the range.
 */
export function bernoulliMask(args: BernoulliMaskArgs, start: number, end: number): void {
  const { out, stream, density } = args;
  if (!(density >= 0 && density <= 1))
    throw new RangeError(`bernoulliMask: density ${density} not in [0, 1]`);
  if (end <= start) return;
  const threshold = density * TWO_POW_32;
  const words = new Uint32Array(4);
  const firstBlock = Math.floor(start / 4);
  const lastBlock = Math.floor((end - 1) / 4);
  for (let b = firstBlock; b <= lastBlock; b++) {
    philox4x32(
      b >>> 0,
      Math.floor(b / TWO_POW_32) >>> 0,
      stream.stream0,
      stream.stream1,
      stream.key0,
      stream.key1,
      words,
    );
    const i0 = b * 4;
    const from = Math.max(i0, start);
    const to = Math.min(i0 + 4, end);
    for (let i = from; i < to; i++) out[i] = words[i - i0]! < threshold ? 1 : 0;
  }
}
