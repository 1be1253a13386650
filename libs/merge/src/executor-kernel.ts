/**
 * The worker-pool kernel of the executor: runs an element-wise merge method on the element range
 * [start, end) of one block (shared arrays), writing into `out`. Only for methods and parameters that
 * isElementwise accepts, so splitting the range changes no result.
 */
import {
  DTYPE_SIZES,
  bf16ToF32Table,
  decodeFloats,
  encodeFloats,
  findNonFinite,
  taskArithmeticBf16Wasm,
  type FloatArray,
  type FloatDType,
} from '@hm3/tensor';
import type { ResolvedParams } from './method.js';
import { getMethod } from './registry.js';
import { numberParam } from './methods/generalized-task-arithmetic.js';

export interface MergeRangeArgs {
  readonly method: string;
  readonly base: FloatArray | null;
  readonly models: readonly FloatArray[];
  readonly ids: readonly string[];
  readonly modelParams: readonly ResolvedParams[];
  readonly params: ResolvedParams;
  readonly name: string;
  readonly layerIndex: number | null;
  readonly seed: bigint;
  /** Absolute index of the block's first element in the whole tensor. */
  readonly elementOffset?: number;
  readonly out: FloatArray;
  /** The model blocks are the executor's scratch (each worker owns its range of them). */
  readonly consumeInputs?: boolean;
}

export function mergeRange(args: MergeRangeArgs, start: number, end: number): void {
  const method = getMethod(args.method);
  const out = args.out.subarray(start, end);
  const result = method.merge({
    base: args.base === null ? null : args.base.subarray(start, end),
    models: args.models.map((t, i) => ({
      id: args.ids[i]!,
      tensor: t.subarray(start, end),
      params: args.modelParams[i]!,
    })),
    params: args.params,
    context: {
      name: args.name,
      layerIndex: args.layerIndex,
      seed: args.seed,
      elementOffset: (args.elementOffset ?? 0) + start,
    },
    out,
    consumeInputs: args.consumeInputs ?? false,
  });
  if (result !== out) out.set(result);
}

/** Elements per chunk of mergeRangeRaw: small enough that a chunk's arrays stay in cache. */
export const RAW_CHUNK_ELEMENTS = 16384;

export interface MergeRangeRawArgs extends Omit<MergeRangeArgs, 'base' | 'models' | 'out'> {
  /** The raw little-endian bytes of each input's block (the base first when `hasBase`), shared. */
  readonly raw: readonly Uint8Array[];
  readonly dtypes: readonly FloatDType[];
  readonly hasBase: boolean;
  readonly compute: 'F32' | 'F64';
  /** Written: the merged block encoded as `outDtype`, shared. */
  readonly outRaw: Uint8Array;
  readonly outDtype: FloatDType;
  /** Look for NaN/Inf in the inputs. */
  readonly checkFinite: boolean;
}

/**
 * mergeRange over raw input bytes: decodes, merges and encodes [start, end) chunk by chunk in
 * worker-local scratch, so decoding and encoding run on the workers too and no full-size decoded copy
 * of any input exists. Returns, per input, the index of its first NaN/Inf in the range (-1: none).
 */
export function mergeRangeRaw(args: MergeRangeRawArgs, start: number, end: number): number[] {
  if (
    args.method === 'task_arithmetic' &&
    args.hasBase &&
    args.compute === 'F32' &&
    args.outDtype === 'BF16' &&
    args.dtypes.every((d) => d === 'BF16') &&
    args.raw.every((r) => r.byteOffset % 2 === 0) &&
    args.outRaw.byteOffset % 2 === 0
  )
    return taskArithmeticBf16(args, start, end);
  return mergeRangeRawGeneric(args, start, end);
}

/** mergeRangeRaw for any method and dtypes: decode, method.merge, encode, chunk by chunk. */
export function mergeRangeRawGeneric(args: MergeRangeRawArgs, start: number, end: number): number[] {
  const method = getMethod(args.method);
  const inputs = args.raw.length;
  const chunk = Math.min(RAW_CHUNK_ELEMENTS, Math.max(1, end - start));
  const alloc = (n: number): FloatArray =>
    args.compute === 'F64' ? new Float64Array(n) : new Float32Array(n);
  const scratch = Array.from({ length: inputs }, () => alloc(chunk));
  const outScratch = alloc(chunk);
  const firstNonFinite = new Array<number>(inputs).fill(-1);
  const outSize = DTYPE_SIZES[args.outDtype];
  for (let a = start; a < end; a += chunk) {
    const b = Math.min(end, a + chunk);
    const m = b - a;
    const blocks: FloatArray[] = [];
    for (let k = 0; k < inputs; k++) {
      const size = DTYPE_SIZES[args.dtypes[k]!];
      const raw = args.raw[k]!.subarray(a * size, b * size);
      const values = decodeFloats(
        args.dtypes[k]!,
        raw,
        args.compute,
        scratch[k]!.subarray(0, m) as Float32Array,
      );
      if (args.checkFinite && firstNonFinite[k]! < 0) {
        const i = findNonFinite(args.compute, values);
        if (i >= 0) firstNonFinite[k] = a + i;
      }
      blocks.push(values);
    }
    const out = outScratch.subarray(0, m);
    const result = method.merge({
      base: args.hasBase ? blocks[0]! : null,
      models: (args.hasBase ? blocks.slice(1) : blocks).map((t, i) => ({
        id: args.ids[i]!,
        tensor: t,
        params: args.modelParams[i]!,
      })),
      params: args.params,
      context: {
        name: args.name,
        layerIndex: args.layerIndex,
        seed: args.seed,
        elementOffset: (args.elementOffset ?? 0) + a,
      },
      out,
      consumeInputs: true,
    });
    encodeFloats(args.outDtype, result, args.outRaw.subarray(a * outSize, b * outSize));
  }
  return firstNonFinite;
}

/**
 * task_arithmetic from bf16 bytes to bf16 bytes in one pass per chunk: each input element through the
 * bf16 -> f32 table, the NaN/Inf flag on its bits, taskVectorSum's arithmetic (each delta rounded to
 * f32, the weighted sum in f64 in model order, rounded once to f32), then floatToBf16's rounding -- the
 * bytes mergeRangeRaw's decode / method.merge / encode give, without the decoded copies of the inputs
 * or a separate NaN scan. Returns, per input, the first NaN/Inf index in the range (-1: none).
 *
 * With three models each chunk goes first to the WebAssembly SIMD kernel of @hm3/tensor
 * (taskArithmeticBf16Wasm: the same arithmetic, four and two lanes at a time), which declines a chunk
 * with a NaN/Inf input or a NaN result; this loop does the declined chunks, other model counts, and
 * everything when the module does not load. taskArithmeticBf16Js is this loop alone (the reference).
 */
export function taskArithmeticBf16(args: MergeRangeRawArgs, start: number, end: number): number[] {
  return taskArithmeticBf16With(args, start, end, true);
}

/** taskArithmeticBf16 in JS only: the reference the WebAssembly kernel is tested against. */
export function taskArithmeticBf16Js(args: MergeRangeRawArgs, start: number, end: number): number[] {
  return taskArithmeticBf16With(args, start, end, false);
}

function taskArithmeticBf16With(
  args: MergeRangeRawArgs,
  start: number,
  end: number,
  useWasm: boolean,
): number[] {
  const inputs = args.raw.length;
  const k = inputs - 1;
  const weights = args.modelParams.map((p, i) => numberParam(p, 'weight', `${args.ids[i]}:${args.name}`));
  const normalize = args.params['normalize'] === true;
  const lambda = typeof args.params['lambda'] === 'number' ? args.params['lambda'] : 1;
  let divisor = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(divisor) < 1e-8) divisor = 1;
  const scale = normalize ? lambda / divisor : lambda;
  const bits = args.raw.map((r) => new Uint16Array(r.buffer, r.byteOffset, r.byteLength >>> 1));
  const outBits = new Uint16Array(args.outRaw.buffer, args.outRaw.byteOffset, args.outRaw.byteLength >>> 1);
  const table = bf16ToF32Table();
  const chunk = Math.min(RAW_CHUNK_ELEMENTS, Math.max(1, end - start));
  const merged = new Float32Array(chunk);
  const mergedBits = new Uint32Array(merged.buffer);
  const first = new Array<number>(inputs).fill(-1);
  const flags = new Int32Array(inputs);
  const hb = bits[0]!;
  const wasm = useWasm ? taskArithmeticBf16Wasm({ bits, outBits, weights, scale }) : null;
  for (let a = start; a < end; a += chunk) {
    const b = Math.min(end, a + chunk);
    if (wasm !== null && wasm(a, b)) continue; // merged there, and no NaN/Inf input in [a, b)
    flags.fill(0);
    if (k === 3) {
      const [h0, h1, h2] = [bits[1]!, bits[2]!, bits[3]!];
      const [w0, w1, w2] = weights as [number, number, number];
      let fb = 0;
      let f0 = 0;
      let f1 = 0;
      let f2 = 0;
      for (let i = a; i < b; i++) {
        const xb = hb[i]!;
        const x0 = h0[i]!;
        const x1 = h1[i]!;
        const x2 = h2[i]!;
        fb |= (xb & 0x7f80) + 0x80;
        f0 |= (x0 & 0x7f80) + 0x80;
        f1 |= (x1 & 0x7f80) + 0x80;
        f2 |= (x2 & 0x7f80) + 0x80;
        const v = table[xb]!;
        merged[i - a] =
          v +
          scale *
            (0 +
              w0 * Math.fround(table[x0]! - v) +
              w1 * Math.fround(table[x1]! - v) +
              w2 * Math.fround(table[x2]! - v));
      }
      flags[0] = fb;
      flags[1] = f0;
      flags[2] = f1;
      flags[3] = f2;
    } else {
      for (let i = a; i < b; i++) {
        const xb = hb[i]!;
        flags[0]! |= (xb & 0x7f80) + 0x80;
        const v = table[xb]!;
        let sum = 0;
        for (let j = 0; j < k; j++) {
          const x = bits[j + 1]![i]!;
          flags[j + 1]! |= (x & 0x7f80) + 0x80;
          sum += weights[j]! * Math.fround(table[x]! - v);
        }
        merged[i - a] = v + scale * sum;
      }
    }
    for (let i = 0; i < b - a; i++) {
      const u = mergedBits[i]!;
      outBits[a + i] =
        (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x0040 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    }
    for (let j = 0; j < inputs && args.checkFinite; j++) {
      if ((flags[j]! & 0x8000) === 0 || first[j]! >= 0) continue;
      const h = bits[j]!;
      for (let i = a; i < b; i++)
        if ((h[i]! & 0x7f80) === 0x7f80) {
          first[j] = i;
          break;
        }
    }
  }
  return first;
}
