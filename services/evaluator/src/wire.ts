/** Mapping between the wire types of evaluator.proto / events.proto and the evaluator core's domain types. */
import { InvalidArgumentError } from '@hm3/errors';
import type { ObjectiveSpec, TaskDefinition } from '@hm3/evaluation';
import type { Device } from '@hm3/model';
import { common, type evaluator } from '@hm3/proto';
import type { EvalSplit, EvalTarget, ObjectiveScore } from './evaluator.js';
import type { ModelRefSpec } from './model-refs.js';

export function splitFromWire(split: common.Split): EvalSplit {
  switch (split) {
    case common.Split.UNSPECIFIED:
    case common.Split.SEARCH:
      return 'search';
    case common.Split.HELDOUT:
      return 'heldout';
    case common.Split.FULL:
      return 'full';
    default:
      throw new InvalidArgumentError(`split: unknown value ${String(split)}`, { field: 'split' });
  }
}

export function splitToWire(split: EvalSplit): common.Split {
  return split === 'search'
    ? common.Split.SEARCH
    : split === 'heldout'
      ? common.Split.HELDOUT
      : common.Split.FULL;
}

export function deviceFromWire(device: common.Device): Device | undefined {
  if (device === common.Device.CPU) return 'cpu';
  if (device === common.Device.CUDA) return 'cuda';
  if (device === common.Device.UNSPECIFIED) return undefined;
  throw new InvalidArgumentError(`device: unknown value ${String(device)}`, { field: 'device' });
}

function modelRefFromWire(ref: common.ModelRef): ModelRefSpec {
  return { modelId: ref.modelId, uri: ref.uri };
}

/** The target oneof of EvaluateRequest / EvalRequested; a missing target is INVALID_ARGUMENT. */
export function targetFromWire(
  target:
    { $case: 'model'; value: common.ModelRef } | { $case: 'path'; value: common.InferencePath } | undefined,
): EvalTarget {
  if (target === undefined) {
    throw new InvalidArgumentError('target: a model or an inference path is required', { field: 'target' });
  }
  if (target.$case === 'model') return { kind: 'model', model: modelRefFromWire(target.value) };
  const p = target.value;
  return {
    kind: 'path',
    pool: p.pool.map(modelRefFromWire),
    steps: p.steps.map((s, i) => {
      if (s.affine && s.affine.scale.length !== s.affine.shift.length) {
        throw new InvalidArgumentError(`path.steps[${i}].affine: scale and shift differ in length`, {
          field: `path.steps[${i}].affine`,
        });
      }
      return {
        poolIndex: s.poolIndex,
        layerIndex: s.layerIndex,
        ...(s.affine ? { affine: { scale: s.affine.scale, shift: s.affine.shift } } : {}),
      };
    }),
    ...(p.headSource === undefined ? {} : { headSource: p.headSource }),
  };
}

/** split_seed is a uint64 on the wire; the permutation takes its low 32 bits. */
export function objectiveFromWire(o: common.Objective): ObjectiveSpec {
  return {
    name: o.name,
    task: o.task,
    ...(o.dataset && o.dataset.uri !== ''
      ? {
          dataset: {
            uri: o.dataset.uri,
            ...(o.dataset.sha256 ? { sha256: o.dataset.sha256 } : {}),
            ...(o.dataset.datasetId ? { id: o.dataset.datasetId } : {}),
          },
        }
      : {}),
    metric: o.metric,
    ...(o.searchFraction === undefined ? {} : { searchFraction: o.searchFraction }),
    splitSeed: Number(BigInt.asUintN(32, o.splitSeed)),
    maxExamples: o.maxExamples,
  };
}

export function scoreToWire(s: ObjectiveScore): common.Score {
  return {
    objective: s.objective,
    metric: s.metric,
    split: splitToWire(s.split),
    value: s.value,
    exampleCount: s.exampleCount,
  };
}

export function taskToWire(t: TaskDefinition): evaluator.TaskInfo {
  return {
    name: t.name,
    description: t.description,
    metrics: [...t.metrics],
    defaultMetric: t.defaultMetric,
  };
}
