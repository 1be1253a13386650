// Test support: seeded random tensors and a way to call a method with its declared defaults filled in.
import type { FloatArray } from '@hm3/tensor';
import type { MergeMethod, ParamScalar, ResolvedParams } from '../method.js';

/** mulberry32: a small seeded generator for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Normal(0, sd) values by Box-Muller. */
export function gaussian(n: number, random: () => number, sd = 1): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const u = Math.max(random(), 1e-12);
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u)) * sd;
    out.push(r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v));
  }
  return out.slice(0, n);
}

export interface HarnessModel {
  id: string;
  tensor: FloatArray;
  params?: Record<string, ParamScalar>;
}

function withDefaults(
  method: MergeMethod,
  scope: 'model' | 'global',
  given: Record<string, ParamScalar> = {},
): ResolvedParams {
  const out: Record<string, ParamScalar> = {};
  for (const p of method.params) if (p.scope === scope && p.default !== undefined) out[p.name] = p.default;
  return { ...out, ...given };
}

/** Runs `method` on one tensor named `name`, with declared defaults under the given parameters. */
export function runMethod(
  method: MergeMethod,
  base: FloatArray | null,
  models: HarnessModel[],
  params: Record<string, ParamScalar> = {},
  context: {
    name?: string;
    seed?: bigint;
    layerIndex?: number | null;
    elementOffset?: number;
    shape?: readonly number[];
  } = {},
): FloatArray {
  return method.merge({
    base: method.base !== 'none' ? base : null,
    models: models.map((m) => ({
      id: m.id,
      tensor: m.tensor,
      params: withDefaults(method, 'model', m.params),
    })),
    params: withDefaults(method, 'global', params),
    context: {
      name: context.name ?? 'model.layers.0.mlp.up_proj.weight',
      layerIndex: context.layerIndex ?? 0,
      seed: context.seed ?? 7n,
      elementOffset: context.elementOffset ?? 0,
      ...(context.shape === undefined ? {} : { shape: context.shape }),
    },
  });
}

/** max |a - b| and max |b| over two arrays. */
export function maxError(out: ArrayLike<number>, ref: ArrayLike<number>): { err: number; scale: number } {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(out[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return { err, scale };
}
