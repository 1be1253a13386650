/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
 * counter-based generator. The output for a counter is a pure function of (counter, key), so element i
 * of a random stream is computed from i alone: the same seed gives the same numbers however the work is
 * split across threads or row blocks.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/**
 * The high 32 bits of the 64-bit product of two uint32 `m` and `a`, given its exact low 32 bits `lo`
 * (Math.imul): the double product m * a is within 2^10 of the true one, and so is its difference with
 * lo, so (m * a - lo) / 2^32 lies within 2^-21 of the integer high word, which rounding recovers
 * exactly (`+ 0.5`, then `>>> 0` floors a positive double below 2^32). Two float multiplies instead of
 * four 16-bit partial products.
 */
export function mulhi32(m: number, a: number, lo: number): number {
  return ((m * a - lo) * 2.3283064365386963e-10 + 0.5) >>> 0;
}

/**
 * Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), all uint32; writes the 4 output words
 * into `out` (a Uint32Array of at least 4).
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let key0 = k0 >>> 0;
  let key1 = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi0 = mulhi32(M0, x0, lo0);
    const lo1 = Math.imul(M1, x2) >>> 0;
    const hi1 = mulhi32(M1, x2, lo1);
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
    key0 = (key0 + W0) >>> 0;
    key1 = (key1 + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

/** FNV-1a (32-bit) of a string's UTF-16 code units, from an offset basis (default FNV's). */
export function fnv1a32(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A random stream: the Philox key from a 64-bit seed, and two counter words naming the stream. */
export interface RandomStream {
  /** Key words (low and high 32 bits of the seed). */
  readonly key0: number;
  readonly key1: number;
  /** Counter words 2 and 3: which stream (e.g. a hash of tensor name and model id). */
  readonly stream0: number;
  readonly stream1: number;
}

/**
 * The stream for (seed, name): the key is the 64-bit seed, the stream words are two independent 32-bit
 * hashes of `name` (e.g. `${tensorName}\u0000${modelId}`), so distinct names give distinct streams.
 */
export function randomStream(seed: bigint, name: string): RandomStream {
  const s = BigInt.asUintN(64, seed);
  return {
    key0: Number(s & 0xffffffffn),
    key1: Number(s >> 32n),
    stream0: fnv1a32(name),
    stream1: fnv1a32(name, 0x9747b28c) ^ 0x5bd1e995,
  };
}
