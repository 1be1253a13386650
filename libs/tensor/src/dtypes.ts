/**
 * Tensor dtypes as safetensors names them, their sizes, and the conversions the merge engine needs:
 * F16/BF16 -> F32/F64 by lookup table or bit shift, F32/F64 -> F16/BF16 with round-to-nearest-even,
 * and NaN/Inf detection.
 *
 * Rounding from F64 to a 16-bit format is done in two steps without double-rounding error: F64 -> F32
 * with round-to-ODD (Math.fround, then step the result toward zero when it rounded away, and set the
 * last bit when inexact), then F32 -> F16/BF16 with round-to-nearest-even. Round-to-odd to a format with
 * at least p + 2 significand bits followed by RNE to p bits equals a single RNE to p bits (Boldo and
 * Melquiond, "When double rounding is odd"); F32 has 24 bits, BF16 8 and F16 11, and F32's exponent range
 * covers both targets (its subnormals included), so the result is the correctly rounded value of the F64
 * input everywhere, overflow to Inf included. The tests check this against an exact BigInt reference.
 *
 * All buffers are little-endian (safetensors is); this module refuses to load on a big-endian host.
 */
import os from 'node:os';
import { InvalidArgumentError } from '@hm3/errors';

if (os.endianness() !== 'LE') throw new Error('@hm3/tensor requires a little-endian host');

/** The dtypes the engine computes in. */
export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';
/** The dtypes passed through untouched (copied bytewise, never converted). */
export type PassThroughDType = 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';
export type DType = FloatDType | PassThroughDType;

/** Bytes per element of each dtype. */
export const DTYPE_SIZES: Readonly<Record<DType, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
});

export const DTYPES: readonly DType[] = Object.freeze(Object.keys(DTYPE_SIZES) as DType[]);

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZES, value);
}

export function isFloatDType(dtype: DType): dtype is FloatDType {
  return dtype === 'F64' || dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

export function dtypeSize(dtype: DType): number {
  return DTYPE_SIZES[dtype];
}

/** The element count of a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------------
// 16-bit -> 32/64-bit

let f16Table: Float32Array | undefined;
/** F16 bit pattern -> F32 value, all 65 536 of them (256 KiB, built on first use). */
export function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    const table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = f16BitsToNumber(h);
    f16Table = table;
  }
  return f16Table;
}

let bf16Table: Float32Array | undefined;
/** BF16 bit pattern -> F32 value, all 65 536 of them (256 KiB, built on first use). */
export function bf16ToF32Table(): Float32Array {
  if (!bf16Table) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = h << 16;
    bf16Table = new Float32Array(bits.buffer);
  }
  return bf16Table;
}

/** The value of one F16 bit pattern (exact). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The value of one BF16 bit pattern (exact). */
export function bf16BitsToNumber(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

/** Decodes F16 bit patterns into `out` (F32 or F64) through the lookup table. */
export function f16ToFloat<T extends Float32Array | Float64Array>(src: Uint16Array, out: T): T {
  const table = f16ToF32Table();
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
  return out;
}

/** Decodes BF16 bit patterns into `out`: into F32 by shifting into its Uint32 view, into F64 by table. */
export function bf16ToFloat<T extends Float32Array | Float64Array>(src: Uint16Array, out: T): T {
  const n = src.length;
  if (out instanceof Float32Array) {
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
  } else {
    const table = bf16ToF32Table();
    for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// 32/64-bit -> 16-bit, round to nearest even

/** F32 bit pattern -> BF16 bit pattern, round-to-nearest-even; NaN stays NaN (quieted, sign kept). */
export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

const F32_INF = 0x7f800000;
const F16_MAX_AS_F32 = (127 + 16) << 23; // 65536.0: at or above it F16 overflows
const F16_SUBNORMAL_LIMIT = 113 << 23; // 2^-14: below it the F16 result is subnormal or zero
const DENORM_MAGIC_BITS = (127 - 15 + (23 - 10) + 1) << 23; // 0.5
const DENORM_MAGIC = 0.5;

/** F32 bit pattern -> F16 bit pattern, round-to-nearest-even; overflow gives Inf; NaN stays NaN. */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const f = bits & 0x7fffffff;
  let out: number;
  if (f >= F16_MAX_AS_F32) {
    out = f > F32_INF ? 0x7e00 : 0x7c00;
  } else if (f < F16_SUBNORMAL_LIMIT) {
    // Align the significand at F16's subnormal quantum by adding 0.5 in F32 arithmetic (RNE); the F64
    // sum of two F32 values rounded once more to F32 equals the F32 sum (53 >= 2 * 24 + 2).
    scratchU32[0] = f;
    scratchF32[0] = scratchF32[0]! + DENORM_MAGIC;
    out = scratchU32[0]! - DENORM_MAGIC_BITS;
  } else {
    const odd = (f >>> 13) & 1;
    out = (f + ((15 - 127) << 23) + 0xfff + odd) >>> 13;
  }
  return out | sign;
}

/** One F64 value -> the F32 bit pattern of its round-to-odd F32 neighbour (NaN -> a quiet NaN). */
function f64ToF32BitsRoundToOdd(x: number): number {
  scratchF32[0] = x;
  let bits = scratchU32[0]!;
  const r = scratchF32[0]!;
  if (r === x || r !== r) return bits; // exact (Inf and zeros included) or NaN
  // Inexact: take the neighbour toward zero (the truncation), then force its last bit to 1.
  if (Math.abs(r) > Math.abs(x)) bits -= 1; // same sign, magnitude one ulp smaller (Inf -> max finite)
  return (bits | 1) >>> 0;
}

/** One number (F64) -> BF16 bits, correctly rounded to nearest even. */
export function numberToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f64ToF32BitsRoundToOdd(x));
}

/** One number (F64) -> F16 bits, correctly rounded to nearest even. */
export function numberToF16Bits(x: number): number {
  return f32BitsToF16Bits(f64ToF32BitsRoundToOdd(x));
}

/** Encodes F32 or F64 values as BF16 bit patterns into `out`, round-to-nearest-even. */
export function floatToBf16(src: Float32Array | Float64Array, out: Uint16Array): Uint16Array {
  const n = src.length;
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) {
      const b = bits[i]!;
      out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = f32BitsToBf16Bits(f64ToF32BitsRoundToOdd(src[i]!));
  }
  return out;
}

/** Encodes F32 or F64 values as F16 bit patterns into `out`, round-to-nearest-even. */
export function floatToF16(src: Float32Array | Float64Array, out: Uint16Array): Uint16Array {
  const n = src.length;
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  } else {
    for (let i = 0; i < n; i++) out[i] = f32BitsToF16Bits(f64ToF32BitsRoundToOdd(src[i]!));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Bytes <-> compute arrays

/** `bytes` itself when it starts on an `align`-byte boundary, else an aligned copy. */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

function checkLength(dtype: DType, bytes: Uint8Array): number {
  const size = DTYPE_SIZES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new InvalidArgumentError(
      `${bytes.byteLength} bytes are not a whole number of ${dtype} elements (${size} bytes each)`,
      { dtype, bytes: bytes.byteLength },
    );
  }
  return bytes.byteLength / size;
}

/**
 * Decodes raw little-endian bytes of a float dtype into `out` (F32 or F64; a new array of the same
 * kind as `into` when `out` is absent). F32 -> F64 widens exactly; F64 -> F32 rounds to nearest even.
 */
export function decodeFloats(dtype: DType, bytes: Uint8Array, into: 'F32'): Float32Array;
export function decodeFloats(dtype: DType, bytes: Uint8Array, into: 'F64'): Float64Array;
export function decodeFloats<T extends Float32Array | Float64Array>(
  dtype: DType,
  bytes: Uint8Array,
  into: 'F32' | 'F64',
  out: T,
): T;
export function decodeFloats(
  dtype: DType,
  bytes: Uint8Array,
  into: 'F32' | 'F64',
  out?: Float32Array | Float64Array,
): Float32Array | Float64Array {
  if (!isFloatDType(dtype))
    throw new InvalidArgumentError(
      `dtype ${dtype} is not a float dtype; it is passed through, not converted`,
      { dtype },
    );
  const n = checkLength(dtype, bytes);
  const target = out ?? (into === 'F32' ? new Float32Array(n) : new Float64Array(n));
  if (target.length < n)
    throw new InvalidArgumentError(`output holds ${target.length} elements, ${n} needed`, { dtype });
  const b = aligned(bytes, DTYPE_SIZES[dtype]);
  switch (dtype) {
    case 'F16':
      return f16ToFloat(new Uint16Array(b.buffer, b.byteOffset, n), target);
    case 'BF16':
      return bf16ToFloat(new Uint16Array(b.buffer, b.byteOffset, n), target);
    case 'F32':
      target.set(new Float32Array(b.buffer, b.byteOffset, n));
      return target;
    case 'F64':
      target.set(new Float64Array(b.buffer, b.byteOffset, n));
      return target;
  }
}

/**
 * Encodes F32 or F64 values as `dtype` bytes (little-endian), rounding to nearest even when narrowing.
 * Writes into `out` when given (its byteLength must fit), else into a new buffer.
 */
export function encodeFloats(
  dtype: DType,
  values: Float32Array | Float64Array,
  out?: Uint8Array,
): Uint8Array {
  if (!isFloatDType(dtype))
    throw new InvalidArgumentError(
      `dtype ${dtype} is not a float dtype; it is passed through, not converted`,
      { dtype },
    );
  const n = values.length;
  const size = DTYPE_SIZES[dtype];
  const target = out ?? new Uint8Array(n * size);
  if (target.byteLength < n * size)
    throw new InvalidArgumentError(`output holds ${target.byteLength} bytes, ${n * size} needed`, { dtype });
  const misaligned = target.byteOffset % size !== 0;
  const t = misaligned ? new Uint8Array(n * size) : target;
  switch (dtype) {
    case 'F16':
      floatToF16(values, new Uint16Array(t.buffer, t.byteOffset, n));
      break;
    case 'BF16':
      floatToBf16(values, new Uint16Array(t.buffer, t.byteOffset, n));
      break;
    case 'F32':
      new Float32Array(t.buffer, t.byteOffset, n).set(values);
      break;
    case 'F64':
      new Float64Array(t.buffer, t.byteOffset, n).set(values);
      break;
  }
  if (misaligned) target.set(t);
  return out ?? target;
}

// ---------------------------------------------------------------------------------------------------
// NaN / Inf detection

/** Index of the first NaN or +-Inf in `values` (F32/F64 values, or F16/BF16 bit patterns), or -1. */
export function findNonFinite(dtype: FloatDType, values: Float32Array | Float64Array | Uint16Array): number {
  const n = values.length;
  if (dtype === 'F16' || dtype === 'BF16') {
    const mask = dtype === 'F16' ? 0x7c00 : 0x7f80;
    for (let i = 0; i < n; i++) if ((values[i]! & mask) === mask) return i;
    return -1;
  }
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v - v !== 0) return i; // NaN - NaN and Inf - Inf are NaN
  }
  return -1;
}

/** What to do when an input holds NaN or Inf. */
export type NonFinitePolicy = 'error' | 'warn';

export interface NonFiniteReport {
  readonly file: string;
  readonly tensor: string;
  /** Flat index of the first non-finite element. */
  readonly index: number;
  readonly value: number;
}

/** A tensor holds NaN or Inf and the policy is `error`. */
export class NonFiniteTensorError extends InvalidArgumentError {
  constructor(report: NonFiniteReport) {
    super(
      `${report.file}: tensor ${report.tensor} holds a non-finite value (${report.value}) at flat index ${report.index}`,
      { ...report, rule: 'finite' },
    );
  }
}

/**
 * Checks `values` of tensor `tensor` from `file` for NaN/Inf. Returns null when all are finite; under
 * policy `warn` returns the report of the first one (and calls `onWarn`), under `error` throws
 * NonFiniteTensorError.
 */
export function checkFinite(
  dtype: FloatDType,
  values: Float32Array | Float64Array | Uint16Array,
  where: {
    file: string;
    tensor: string;
    policy: NonFinitePolicy;
    onWarn?: (report: NonFiniteReport) => void;
    indexOffset?: number;
  },
): NonFiniteReport | null {
  const i = findNonFinite(dtype, values);
  if (i < 0) return null;
  const raw = values[i]!;
  const value = dtype === 'F16' ? f16BitsToNumber(raw) : dtype === 'BF16' ? bf16BitsToNumber(raw) : raw;
  const report: NonFiniteReport = {
    file: where.file,
    tensor: where.tensor,
    index: i + (where.indexOffset ?? 0),
    value,
  };
  if (where.policy === 'error') throw new NonFiniteTensorError(report);
  where.onWarn?.(report);
  return report;
}
