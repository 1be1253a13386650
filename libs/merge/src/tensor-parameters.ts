import { MissingParameterError } from './errors.js';
import type { MergeMethod, ParamScalar, ResolvedParams } from './method.js';
import { modelKey, type ModelRef, type ParamSetting, type Recipe } from './recipe.js';

/**
 * The gradient position of a tensor, as mergekit: layer i of n takes t = i / (n - 1) (t = 1 when
 * n = 1); tensors outside the layers (embeddings, final norm, head) take t = 0, the first value.
 */
export function gradientT(layerIndex: number | null, numLayers: number): number {
  if (layerIndex === null) return 0;
  return numLayers > 1 ? layerIndex / (numLayers - 1) : 1;
}

/** mergekit's piecewise-linear interpolation of a gradient list at t in [0, 1]. */
export function interpolateGradient(values: readonly number[], t: number): number {
  const scaled = t * (values.length - 1);
  const i0 = Math.floor(scaled);
  const i1 = Math.min(values.length - 1, i0 + 1);
  const frac = scaled - i0;
  return (1 - frac) * values[i0]! + frac * values[i1]!;
}

/**
 * A setting's value for one tensor: a gradient is interpolated at t; a filtered list takes its first
 * entry whose filter is a substring of the tensor name (null matches all); undefined when none matches
 * (the lookup then falls through to the next level, as mergekit).
 */
export function evaluateSetting(
  setting: ParamSetting,
  tensorName: string,
  t: number,
): ParamScalar | undefined {
  switch (setting.kind) {
    case 'value':
      return setting.value;
    case 'gradient':
      return interpolateGradient(setting.values, t);
    case 'filtered':
      for (const entry of setting.entries) {
        if (entry.filter === null || tensorName.includes(entry.filter)) {
          const v = entry.value;
          return Array.isArray(v) ? interpolateGradient(v as readonly number[], t) : (v as ParamScalar);
        }
      }
      return undefined;
  }
}

/** One model's part in a tensor's merge. */
export interface TensorModelPlan {
  readonly ref: ModelRef;
  /** modelKey(ref): the model's identity (and its random stream). */
  readonly id: string;
  readonly params: ResolvedParams;
}

/** The parameters of one tensor's merge: global ones, and per model (the base excluded where the method takes one). */
export interface TensorParameters {
  readonly params: ResolvedParams;
  readonly models: readonly TensorModelPlan[];
}

/**
 * Resolves every parameter of `method` for one tensor: per-model parameters look in the model's own
 * settings, then the top-level ones, then the method's default; global ones in the top-level settings,
 * then the default. A required parameter with no value is a MissingParameterError naming the tensor.
 */
export function resolveTensorParameters(
  recipe: Recipe,
  method: MergeMethod,
  tensorName: string,
  t: number,
): TensorParameters {
  const lookup = (levels: readonly (Readonly<Record<string, ParamSetting>> | undefined)[], name: string) => {
    for (const level of levels) {
      const setting = level?.[name];
      if (setting === undefined) continue;
      const v = evaluateSetting(setting, tensorName, t);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const params: Record<string, ParamScalar> = {};
  for (const spec of method.params) {
    if (spec.scope !== 'global') continue;
    const v = lookup([recipe.parameters], spec.name) ?? spec.default;
    if (v === undefined) {
      if (spec.required) throw new MissingParameterError(spec.name, tensorName, null);
      continue;
    }
    params[spec.name] = v;
  }
  const models = recipe.models
    .filter((m) => !(method.base !== 'none' && m.isBase))
    .map((m): TensorModelPlan => {
      const id = modelKey(m.ref);
      const own: Record<string, ParamScalar> = {};
      for (const spec of method.params) {
        if (spec.scope !== 'model') continue;
        const v = lookup([m.parameters, recipe.parameters], spec.name) ?? spec.default;
        if (v === undefined) {
          if (spec.required) throw new MissingParameterError(spec.name, tensorName, id);
          continue;
        }
        own[spec.name] = v;
      }
      return { ref: m.ref, id, params: own };
    });
  return { params, models };
}
