import type { FloatArray } from './float-array.js';
import type { RandomStream } from './philox.js';

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
const TWO_POW_M32 = 2.3283064365386963e-10;
const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** The 10 round keys of a stream's key (key0 + r * W0, key1 + r * W1, mod 2^32), interleaved. */
function roundKeys(stream: RandomStream): Float64Array {
  const keys = new Float64Array(20);
  let k0 = stream.key0 >>> 0;
  let k1 = stream.key1 >>> 0;
  for (let r = 0; r < 10; r++) {
    keys[2 * r] = k0;
    keys[2 * r + 1] = k1;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return keys;
}

/**
 * The keep bits of block b (elements 4b .. 4b+3): bit j is set when word j of
 * Philox4x32-10(counter = (b low, b high, stream0, stream1), key) is below `threshold`. philox4x32 with
 * the round keys precomputed and the four comparisons folded into one small integer (no array writes).
 */
function blockKeepBits(b: number, s0: number, s1: number, keys: Float64Array, threshold: number): number {
  let x0 = b >>> 0;
  let x1 = Math.floor(b / TWO_POW_32) >>> 0;
  let x2 = s0;
  let x3 = s1;
  for (let r = 0; r < 20; r += 2) {
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi0 = ((M0 * x0 - lo0) * TWO_POW_M32 + 0.5) >>> 0; // mulhi32(M0, x0, lo0), inline
    const lo1 = Math.imul(M1, x2) >>> 0;
    const hi1 = ((M1 * x2 - lo1) * TWO_POW_M32 + 0.5) >>> 0;
    x0 = (hi1 ^ x1 ^ keys[r]!) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ keys[r + 1]!) >>> 0;
    x3 = lo0;
  }
  return +(x0 < threshold) | (+(x1 < threshold) << 1) | (+(x2 < threshold) << 2) | (+(x3 < threshold) << 3);
}

/**
 * blockKeepBits of the four blocks b .. b+3 at once (bit 4j + w: word w of block b + j): the four
 * Philox chains are independent, so interleaving their rounds lets the CPU overlap them (about 1.8x
 * the throughput of one chain at a time here).
 */
function fourBlockKeepBits(b: number, s0: number, s1: number, keys: Float64Array, threshold: number): number {
  let a0 = b >>> 0;
  let a1 = Math.floor(b / TWO_POW_32) >>> 0;
  let a2 = s0;
  let a3 = s1;
  let b0 = (b + 1) >>> 0;
  let b1 = Math.floor((b + 1) / TWO_POW_32) >>> 0;
  let b2 = s0;
  let b3 = s1;
  let c0 = (b + 2) >>> 0;
  let c1 = Math.floor((b + 2) / TWO_POW_32) >>> 0;
  let c2 = s0;
  let c3 = s1;
  let d0 = (b + 3) >>> 0;
  let d1 = Math.floor((b + 3) / TWO_POW_32) >>> 0;
  let d2 = s0;
  let d3 = s1;
  for (let r = 0; r < 20; r += 2) {
    const k0 = keys[r]!;
    const k1 = keys[r + 1]!;
    const aL0 = Math.imul(M0, a0) >>> 0;
    const aL1 = Math.imul(M1, a2) >>> 0;
    const bL0 = Math.imul(M0, b0) >>> 0;
    const bL1 = Math.imul(M1, b2) >>> 0;
    const cL0 = Math.imul(M0, c0) >>> 0;
    const cL1 = Math.imul(M1, c2) >>> 0;
    const dL0 = Math.imul(M0, d0) >>> 0;
    const dL1 = Math.imul(M1, d2) >>> 0;
    // mulhi32 (philox.ts), inline
    const aH0 = ((M0 * a0 - aL0) * TWO_POW_M32 + 0.5) >>> 0;
    const aH1 = ((M1 * a2 - aL1) * TWO_POW_M32 + 0.5) >>> 0;
    const bH0 = ((M0 * b0 - bL0) * TWO_POW_M32 + 0.5) >>> 0;
    const bH1 = ((M1 * b2 - bL1) * TWO_POW_M32 + 0.5) >>> 0;
    const cH0 = ((M0 * c0 - cL0) * TWO_POW_M32 + 0.5) >>> 0;
    const cH1 = ((M1 * c2 - cL1) * TWO_POW_M32 + 0.5) >>> 0;
    const dH0 = ((M0 * d0 - dL0) * TWO_POW_M32 + 0.5) >>> 0;
    const dH1 = ((M1 * d2 - dL1) * TWO_POW_M32 + 0.5) >>> 0;
    a0 = (aH1 ^ a1 ^ k0) >>> 0;
    a1 = aL1;
    a2 = (aH0 ^ a3 ^ k1) >>> 0;
    a3 = aL0;
    b0 = (bH1 ^ b1 ^ k0) >>> 0;
    b1 = bL1;
    b2 = (bH0 ^ b3 ^ k1) >>> 0;
    b3 = bL0;
    c0 = (cH1 ^ c1 ^ k0) >>> 0;
    c1 = cL1;
    c2 = (cH0 ^ c3 ^ k1) >>> 0;
    c3 = cL0;
    d0 = (dH1 ^ d1 ^ k0) >>> 0;
    d1 = dL1;
    d2 = (dH0 ^ d3 ^ k1) >>> 0;
    d3 = dL0;
  }
  const t = threshold;
  return (
    +(a0 < t) |
    (+(a1 < t) << 1) |
    (+(a2 < t) << 2) |
    (+(a3 < t) << 3) |
    (+(b0 < t) << 4) |
    (+(b1 < t) << 5) |
    (+(b2 < t) << 6) |
    (+(b3 < t) << 7) |
    (+(c0 < t) << 8) |
    (+(c1 < t) << 9) |
    (+(c2 < t) << 10) |
    (+(c3 < t) << 11) |
    (+(d0 < t) << 12) |
    (+(d1 < t) << 13) |
    (+(d2 < t) << 14) |
    (+(d3 < t) << 15)
  );
}

function checkDensity(density: number, kernel: string): void {
  if (!(density >= 0 && density <= 1)) throw new RangeError(`${kernel}: density ${density} not in [0, 1]`);
}

/**
 * Bernoulli(density) keep-mask over [start, end). Element i draws word (i mod 4) of
 * Philox4x32-10(counter = (floor(i/4) low, floor(i/4) high, stream0, stream1), key = seed), and is kept
 * when word < density * 2^32, i being the absolute index (indexOffset + position in out). Depends only
 * on (seed, stream, i): identical for any split of the range or of the tensor into row blocks.
 */
export function bernoulliMask(args: BernoulliMaskArgs, start: number, end: number): void {
  const { out, stream, density } = args;
  checkDensity(density, 'bernoulliMask');
  if (end <= start) return;
  const offset = args.indexOffset ?? 0;
  const threshold = density * TWO_POW_32;
  const keys = roundKeys(stream);
  const s0 = stream.stream0 >>> 0;
  const s1 = stream.stream1 >>> 0;
  const first = offset + start;
  const last = offset + end; // exclusive, absolute
  let b = Math.floor(first / 4);
  // a partial first block, one block at a time
  for (; b * 4 < first && b * 4 < last; b++)
    partialBlock(out, b, first, last, offset, s0, s1, keys, threshold);
  // whole blocks, four at a time
  for (; (b + 4) * 4 <= last; b += 4) {
    const bits = fourBlockKeepBits(b, s0, s1, keys, threshold);
    const o = b * 4 - offset;
    for (let j = 0; j < 16; j++) out[o + j] = (bits >>> j) & 1;
  }
  // the rest
  for (; b * 4 < last; b++) partialBlock(out, b, first, last, offset, s0, s1, keys, threshold);
}

/** The elements of block b inside [first, last) (absolute indices), one block's Philox. */
function partialBlock(
  out: Uint8Array,
  b: number,
  first: number,
  last: number,
  offset: number,
  s0: number,
  s1: number,
  keys: Float64Array,
  threshold: number,
): void {
  const bits = blockKeepBits(b, s0, s1, keys, threshold);
  const a0 = b * 4;
  const to = Math.min(a0 + 4, last);
  for (let a = Math.max(a0, first); a < to; a++) out[a - offset] = (bits >>> (a - a0)) & 1;
}

/** Elements per partial sum of the L1 norms (absSumBothChunked, dareMaskSums): fixed, so any split agrees. */
export const L1_CHUNK = 65536;

export interface DareMaskSumsArgs {
  /** Updated in place: the dropped entries become +0 (the kept ones are left as they are). */
  x: FloatArray;
  /** Written: the keep-mask (1 kept, 0 dropped), as bernoulliMask writes it. */
  keep: Uint8Array;
  stream: RandomStream;
  density: number;
  /** Absolute index of x[0] in the whole tensor (the Philox counter); default 0. */
  indexOffset?: number;
  /**
   * Written: for each L1_CHUNK-element chunk c of x that the range covers, sums[2c] = sum |x| and
   * sums[2c + 1] = sum of the kept |x|, in f64 in index order. The range must start at a chunk boundary
   * (and end at one or at x's end), so every chunk is summed by one caller.
   */
  sums: Float64Array;
}

/**
 * DARE's mask, its L1 sums and the drop in one pass over [start, end): bernoulliMask's keep bits into
 * `keep`, the per-chunk sums of |x| before and after the drop (see absSumBothChunked), and the dropped
 * entries of x set to +0 -- so x then equals applyMask(x, keep, 1), and the rescale is one multiply left.
 */
export function dareMaskSums(args: DareMaskSumsArgs, start: number, end: number): void {
  const { x, keep, stream, density, sums } = args;
  checkDensity(density, 'dareMaskSums');
  if (start % L1_CHUNK !== 0)
    throw new RangeError(`dareMaskSums: range start ${start} is not a multiple of ${L1_CHUNK}`);
  const indexOffset = args.indexOffset ?? 0;
  for (let c0 = start; c0 < end; c0 += L1_CHUNK) {
    const c1 = Math.min(end, c0 + L1_CHUNK);
    bernoulliMask({ out: keep, stream, density, indexOffset }, c0, c1);
    let all = 0;
    let kept = 0;
    for (let i = c0; i < c1; i++) {
      const a = Math.abs(x[i]!);
      all += a;
      if (keep[i] !== 0) kept += a;
      else x[i] = 0;
    }
    const c = c0 / L1_CHUNK;
    sums[2 * c] = all;
    sums[2 * c + 1] = kept;
  }
}
