/**
 * The worker-pool kernel of the executor: runs an element-wise merge method on the element range
 * [start, end) of one block (shared arrays), writing into `out`. Only for methods and parameters that
 * isElementwise accepts, so splitting the range changes no result.
 */
import {
  DTYPE_SIZES,
  decodeFloats,
  encodeFloats,
  findNonFinite,
  type FloatArray,
  type FloatDType,
} from '@hm3/tensor';
import type { ResolvedParams } from './method.js';
import { getMethod } from './registry.js';

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
