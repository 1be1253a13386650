/**
 * The worker-pool kernel of the executor: runs an element-wise merge method on the element range
 * [start, end) of one block (shared arrays), writing into `out`. Only for methods and parameters that
 * isElementwise accepts, so splitting the range changes no result.
 */
import type { FloatArray } from '@hm3/tensor';
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
}

export function mergeRange(args: MergeRangeArgs, start: number, end: number): void {
  const method = getMethod(args.method);
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
  });
  args.out.set(result, start);
}
