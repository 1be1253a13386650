/**
 * Decoding and encoding of whole tensors on the worker pool: the raw little-endian bytes of a checkpoint
 * into the compute arrays (with the task vector taken in the same pass, so no separate subtraction pass
 * and no decode on the calling thread), and the merged values back into the output dtype's bytes.
 */
import { DTYPE_SIZES, decodeFloats, encodeFloats, findNonFinite, type FloatDType } from '../dtypes.js';
import type { FloatArray } from './float-array.js';

/** Elements per chunk: a chunk of every input stays in cache between the decode and the subtraction. */
const CHUNK = 16384;

export interface DecodeDeltasArgs {
  /** The raw bytes of each input (the base first when `hasBase`), shared. */
  raw: Uint8Array[];
  dtypes: FloatDType[];
  /** Written: outs[0] = the base's values; outs[k] = input k's values minus the base's (a task vector). */
  outs: FloatArray[];
  /** outs[0] is a base whose values the others are taken relative to; else every output is decoded as is. */
  hasBase: boolean;
}

/**
 * Decodes [start, end) of every input into `outs`, and when `hasBase` turns every other input into its
 * task vector, rounded to the array's element type as `axpy(y = x, x = base, alpha = -1)` would leave it.
 * Returns, per input, the index of its first NaN/Inf in the range (-1: none), found on the decoded values.
 */
export function decodeDeltas(args: DecodeDeltasArgs, start: number, end: number): number[] {
  const { raw, dtypes, outs, hasBase } = args;
  const inputs = raw.length;
  const first = new Array<number>(inputs).fill(-1);
  for (let k = 0; k < inputs; k++) {
    const out = outs[k]!;
    const dtype = dtypes[k]!;
    const size = DTYPE_SIZES[dtype];
    const base = hasBase && k > 0 ? outs[0]! : null;
    const compute = out instanceof Float64Array ? 'F64' : 'F32';
    for (let a = start; a < end; a += CHUNK) {
      const b = Math.min(end, a + CHUNK);
      const bytes = raw[k]!.subarray(a * size, b * size);
      let values: FloatArray;
      if (dtype === 'BF16' && out instanceof Float32Array && bytes.byteOffset % 2 === 0) {
        // the common case, inline: bf16 bits shifted into the f32 bit pattern, a NaN/Inf flag on the way
        const src = new Uint16Array(bytes.buffer, bytes.byteOffset, b - a);
        const dst = new Uint32Array(out.buffer, out.byteOffset + a * 4, b - a);
        let flags = 0;
        for (let i = 0; i < b - a; i++) {
          const h = src[i]!;
          flags |= (h & 0x7f80) + 0x80;
          dst[i] = h << 16;
        }
        values = out.subarray(a, b);
        if ((flags & 0x8000) !== 0 && first[k]! < 0) {
          const i = findNonFinite('F32', values);
          if (i >= 0) first[k] = a + i;
        }
      } else {
        values = decodeFloats(dtype, bytes, compute, out.subarray(a, b));
        if (first[k]! < 0) {
          const i = findNonFinite(compute, values);
          if (i >= 0) first[k] = a + i;
        }
      }
      if (base !== null) for (let i = a; i < b; i++) out[i] = out[i]! - base[i]!;
    }
  }
  return first;
}

export interface EncodeRangeArgs {
  /** The values to encode. */
  x: FloatArray;
  dtype: FloatDType;
  /** Written: x encoded as `dtype` (element i at byte i * size), shared. */
  out: Uint8Array;
}

/** encodeFloats over [start, end) of `x` into the matching bytes of `out`. */
export function encodeRange(args: EncodeRangeArgs, start: number, end: number): void {
  const size = DTYPE_SIZES[args.dtype];
  encodeFloats(args.dtype, args.x.subarray(start, end), args.out.subarray(start * size, end * size));
}
