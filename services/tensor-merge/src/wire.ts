/** Mapping between the wire types of merge.proto and the domain types of the service core. */
import { InvalidArgumentError } from '@hm3/errors';
import {
  recipeFromProto,
  type MergeMethod,
  type MergePlan,
  type MergeProgress,
  type ParamScalar,
  type Recipe,
} from '@hm3/merge';
import { common, merge } from '@hm3/proto';
import type { DType } from '@hm3/tensor';
import type { Device } from './device.js';
import type { ModelManifest } from './model-manifest.js';
import type { MergeOutcome } from './tensor-merge.js';

const DTYPE_TO_WIRE: Readonly<Record<string, common.DType>> = {
  F32: common.DType.F32,
  F16: common.DType.F16,
  BF16: common.DType.BF16,
  F64: common.DType.F64,
};

/** The domain recipe of a request's recipe; a missing recipe is INVALID_ARGUMENT naming `recipe`. */
export function recipeFromWire(recipe: common.MergeRecipe | undefined): Recipe {
  if (recipe === undefined) throw new InvalidArgumentError('recipe: required', { field: 'recipe' });
  return recipeFromProto(recipe, 'recipe');
}

export function deviceFromWire(device: common.Device): Device | undefined {
  if (device === common.Device.CPU) return 'cpu';
  if (device === common.Device.CUDA) return 'cuda';
  if (device === common.Device.UNSPECIFIED) return undefined;
  throw new InvalidArgumentError(`device: unknown value ${String(device)}`, { field: 'device' });
}

export function manifestToWire(m: ModelManifest): merge.ModelManifest {
  return {
    modelId: m.modelId,
    uri: m.uri,
    architecture: m.architecture,
    numLayers: m.numLayers,
    hiddenSize: m.hiddenSize,
    vocabSize: m.vocabSize,
    dtype: DTYPE_TO_WIRE[m.dtype as DType] ?? common.DType.UNSPECIFIED,
    parameterCount: BigInt(m.parameterCount),
    files: m.files.map((f) => ({ path: f.path, sizeBytes: BigInt(f.bytes), sha256: f.sha256 })),
  };
}

export function planToWire(plan: MergePlan, artifactId: string): merge.MergePlan {
  const classes = plan.reference.config['architectures'];
  return {
    artifactId,
    tensorCount: plan.tensors.length,
    outputBytes: BigInt(plan.outputBytes),
    peakMemoryBytes: BigInt(Number.isFinite(plan.peakMemoryBytes) ? Math.round(plan.peakMemoryBytes) : 0),
    architecture:
      Array.isArray(classes) && typeof classes[0] === 'string'
        ? classes[0]
        : plan.reference.architecture.family,
    numLayers: plan.reference.architecture.numLayers,
  };
}

/** Progress of the executor (input bytes) as output bytes of the plan, proportionally. */
export function progressToWire(p: MergeProgress, outputBytes: number): merge.MergeProgress {
  const fraction = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 0;
  return {
    tensorsDone: p.tensorsDone,
    tensorsTotal: p.tensorsTotal,
    bytesDone: BigInt(Math.round(outputBytes * fraction)),
    bytesTotal: BigInt(outputBytes),
    currentTensor: p.tensor,
  };
}

export function resultToWire(r: MergeOutcome): merge.MergeResult {
  return {
    artifactId: r.artifactId,
    uri: r.uri,
    manifest: manifestToWire(r.manifest),
    reused: r.reused,
    elapsedSeconds: r.elapsedSeconds,
  };
}

function paramToWire(value: ParamScalar): common.ParamValue {
  if (typeof value === 'number') return { value: { $case: 'scalar', value } };
  if (typeof value === 'boolean') return { value: { $case: 'flag', value } };
  return { value: { $case: 'choice', value } };
}

export function methodToWire(m: MergeMethod): merge.MergeMethod {
  return {
    name: m.name,
    description: m.description,
    requiresBase: m.base === 'required',
    minModels: m.models.min,
    maxModels: m.models.max ?? 0,
    parameters: m.params.map((p) => ({
      name: p.name,
      type:
        p.kind === 'number'
          ? merge.ParameterType.NUMBER
          : p.kind === 'boolean'
            ? merge.ParameterType.BOOLEAN
            : merge.ParameterType.CHOICE,
      scope: p.scope === 'model' ? merge.ParameterScope.MODEL : merge.ParameterScope.GLOBAL,
      ...(p.default === undefined || p.required === true ? {} : { defaultValue: paramToWire(p.default) }),
      description: p.description,
      choices: [...(p.choices ?? [])],
      ...(p.min === undefined ? {} : { min: p.min }),
      ...(p.max === undefined ? {} : { max: p.max }),
    })),
  };
}
