/**
 * The domain form of an inference path (the wire InferencePath of hm3.v1.common, mapped at the edge):
 * a pool of checkpoints, steps (pool index, layer index, optional affine map applied to the hidden
 * state BEFORE the step's layer) and the pool index giving embedding, final norm and head.
 */
import type { LlamaArchitecture } from './config.js';
import { InvalidPathError } from './errors.js';

/** z' = scale ⊙ z + shift, one value per hidden dimension. */
export interface Affine {
  readonly scale: ArrayLike<number>;
  readonly shift: ArrayLike<number>;
}

export interface PathStep {
  readonly poolIndex: number;
  readonly layerIndex: number;
  readonly affine?: Affine | undefined;
}

export interface InferencePath {
  /** HF model folders. */
  readonly pool: readonly string[];
  readonly steps: readonly PathStep[];
  /** Pool index of the embedding, final norm and head; default: the last pool entry. */
  readonly headSource?: number | undefined;
}

/** The path of one model through its own layers, in order (the model itself). */
export function ownPath(dir: string, numLayers: number): InferencePath {
  return {
    pool: [dir],
    steps: Array.from({ length: numLayers }, (_, layerIndex) => ({ poolIndex: 0, layerIndex })),
    headSource: 0,
  };
}

/**
 * Checks a path against its pool's architectures and returns the resolved head source. Throws
 * InvalidPathError naming the rule and the step.
 */
export function validatePath(path: InferencePath, archs: readonly LlamaArchitecture[]): number {
  if (path.pool.length === 0) throw new InvalidPathError('empty-pool', 'the pool holds no model');
  if (path.steps.length === 0) throw new InvalidPathError('empty-steps', 'the path has no step');
  const head = path.headSource ?? path.pool.length - 1;
  if (!Number.isInteger(head) || head < 0 || head >= path.pool.length) {
    throw new InvalidPathError(
      'head-source',
      `head_source ${head} is outside the pool [0, ${path.pool.length})`,
      { headSource: head },
    );
  }
  const hidden = archs[head]!.hiddenSize;
  path.steps.forEach((s, step) => {
    if (!Number.isInteger(s.poolIndex) || s.poolIndex < 0 || s.poolIndex >= path.pool.length) {
      throw new InvalidPathError(
        'pool-index',
        `pool index ${s.poolIndex} is outside the pool [0, ${path.pool.length})`,
        { step, poolIndex: s.poolIndex },
      );
    }
    const arch = archs[s.poolIndex]!;
    if (!Number.isInteger(s.layerIndex) || s.layerIndex < 0 || s.layerIndex >= arch.numLayers) {
      throw new InvalidPathError(
        'layer-index',
        `layer ${s.layerIndex} is outside [0, ${arch.numLayers}) of ${path.pool[s.poolIndex]}`,
        { step, layerIndex: s.layerIndex, model: path.pool[s.poolIndex] },
      );
    }
    if (arch.hiddenSize !== hidden) {
      throw new InvalidPathError(
        'hidden-size',
        `${path.pool[s.poolIndex]} has hidden size ${arch.hiddenSize}, the head source ${path.pool[head]} has ${hidden}`,
        { step, hiddenSize: arch.hiddenSize, expected: hidden },
      );
    }
    if (s.affine && (s.affine.scale.length !== hidden || s.affine.shift.length !== hidden)) {
      throw new InvalidPathError(
        'affine-length',
        `affine scale/shift have ${s.affine.scale.length}/${s.affine.shift.length} values, the hidden size is ${hidden}`,
        { step, scale: s.affine.scale.length, shift: s.affine.shift.length, expected: hidden },
      );
    }
  });
  return head;
}
