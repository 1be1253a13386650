import { allocLike, type FloatArray } from '@hm3/tensor';
import { InvalidArgumentError } from '@hm3/errors';
import type { MergeMethod } from '../method.js';

/**
 * EMR-Merging's unified task vector on one element range: elected sign = sign(sum_t delta_t) (>= 0 counts
 * positive), magnitude = the largest |delta_t| among the tasks agreeing with it (0 if none).
 */
export function unifiedTaskVector(base: FloatArray, tensors: readonly FloatArray[]): Float64Array {
  const n = base.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (const x of tensors) sum += x[i]! - base[i]!;
    const sign = sum >= 0 ? 1 : -1;
    let mag = 0;
    for (const x of tensors) {
      const d = x[i]! - base[i]!;
      if (Math.sign(d) === sign && Math.abs(d) > mag) mag = Math.abs(d);
    }
    out[i] = sign * mag;
  }
  return out;
}

/**
 * The task-specific modulators of one element range: mask M_t = (delta_t * tau_uni > 0), packed one bit
 * per element into `bits` from bit `bitOffset` (LSB first), and the two sums of the rescaler
 * lambda_t = sum |delta_t| / sum |M_t * tau_uni|, accumulated over the whole model.
 */
export function emrTaskModulator(
  base: FloatArray,
  task: FloatArray,
  unified: Float64Array,
  bits: Uint8Array,
  bitOffset: number,
): { deltaAbs: number; maskedAbs: number } {
  let deltaAbs = 0;
  let maskedAbs = 0;
  for (let i = 0; i < base.length; i++) {
    const d = task[i]! - base[i]!;
    deltaAbs += Math.abs(d);
    if (d * unified[i]! > 0) {
      maskedAbs += Math.abs(unified[i]!);
      const b = bitOffset + i;
      bits[b >>> 3] = bits[b >>> 3]! | (1 << (b & 7));
    }
  }
  return { deltaAbs, maskedAbs };
}

export const emr: MergeMethod = {
  name: 'emr',
  description:
    'EMR-Merging (elect, mask, rescale): one shared model theta_base + tau_uni (elected sign of the summed ' +
    'task vectors, largest agreeing magnitude) plus, per task, a 1-bit mask and a scalar rescaler written ' +
    'under tasks/<model>/; `hm3 merge --task <model>` materialises theta_base + lambda_t M_t tau_uni.',
  reference: 'https://arxiv.org/abs/2405.17461',
  base: 'required',
  models: { min: 1 },
  params: [],
  elementwise: () => true,
  merge({ base, models, context }) {
    if (base === null)
      throw new InvalidArgumentError(`tensor ${context.name}: emr needs a base model`, {
        tensor: context.name,
      });
    const tau = unifiedTaskVector(
      base,
      models.map((m) => m.tensor),
    );
    const out = allocLike(base);
    for (let i = 0; i < base.length; i++) out[i] = base[i]! + tau[i]!;
    return out;
  },
};
