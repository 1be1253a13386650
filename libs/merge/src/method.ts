import type { FloatArray } from '@hm3/tensor';
import type { GtaOptions } from './methods/generalized-task-arithmetic.js';

/** A parameter value once resolved for one tensor: a number, a flag or a choice name. */
export type ParamScalar = number | boolean | string;

/** Resolved parameters by name, defaults filled in. */
export type ResolvedParams = Readonly<Record<string, ParamScalar>>;

/**
 * A method parameter's declaration: the single source for recipe validation, defaults, parameter
 * resolution and `hm3 merge --list-methods`.
 */
export interface ParamSpec {
  readonly name: string;
  readonly kind: 'number' | 'boolean' | 'choice';
  /**
   * 'model': one value per model (and per tensor: gradients and filters apply), e.g. weight, density.
   * 'global': one value per tensor for the whole merge (top-level `parameters` only), e.g. normalize, t.
   */
  readonly scope: 'model' | 'global';
  /** Required for every model that is not the base (model scope) or for the merge (global scope). */
  readonly required?: boolean;
  readonly default?: ParamScalar;
  /** Inclusive bounds of a number. */
  readonly min?: number;
  readonly max?: number;
  /** The names a choice takes. */
  readonly choices?: readonly string[];
  /** For a choice that mergekit spells as a boolean: what `true` and `false` mean. */
  readonly booleanChoices?: { readonly true: string; readonly false: string };
  readonly description: string;
}

/** Where a tensor sits, and the seed of every random choice made for it. */
export interface TensorContext {
  /** The tensor's name in the checkpoint, e.g. `model.layers.3.mlp.up_proj.weight`. */
  readonly name: string;
  /** The layer index of a per-layer tensor; null for embeddings, final norm, head. */
  readonly layerIndex: number | null;
  /** The recipe's seed. */
  readonly seed: bigint;
  /**
   * Index, in the whole tensor, of the first element of the arrays given (a row block); default 0.
   * Random masks are keyed by absolute element index, so a tensor merged block by block gets the same
   * masks as merged whole.
   */
  readonly elementOffset?: number;
  /**
   * The shape of the arrays given (the whole tensor, or the row block), for methods that work per row
   * (della, nuslerp row-wise, model_stock filter-wise); absent: a flat vector.
   */
  readonly shape?: readonly number[];
  /**
   * `scope: global` trimming: per model id, the magnitude thresholds found over the whole model by the
   * executor's pre-pass; trimming methods keep |delta| >= keepAbove and drop |delta| >= dropAbove.
   */
  readonly globalTrim?: Readonly<Record<string, GlobalTrim>>;
}

/** Model-wide magnitude thresholds of one model (scope: global); null: no bound on that side. */
export interface GlobalTrim {
  readonly keepAbove: number | null;
  readonly dropAbove: number | null;
}

/** One input model of a merge, for one tensor. */
export interface MethodModel {
  /** A stable identity of the model (its reference), e.g. for its random stream. */
  readonly id: string;
  readonly tensor: FloatArray;
  readonly params: ResolvedParams;
}

/** Everything a method sees of one tensor. All arrays have the same length and element type. */
export interface MethodInput {
  /** The base model's tensor (methods with `base: 'required'`, or 'optional' with a base), else null. */
  readonly base: FloatArray | null;
  /** The models merged, the base excluded for methods that take one. */
  readonly models: readonly MethodModel[];
  /** Global parameters. */
  readonly params: ResolvedParams;
  readonly context: TensorContext;
  /**
   * Where to write the result (same length and element type as the inputs); a method may ignore it and
   * return a new array, so callers use the returned one. It never aliases an input.
   */
  readonly out?: FloatArray;
  /**
   * The models' arrays are the caller's scratch: the method may overwrite them (e.g. turn them into
   * task vectors in place) instead of allocating. The base is never written.
   */
  readonly consumeInputs?: boolean;
}

/**
 * A merge method: a pure function from one tensor's inputs to the merged tensor, computed in the
 * element type of its inputs (f32 or f64), so an executor streams tensor by tensor.
 */
export interface MergeMethod {
  readonly name: string;
  readonly description: string;
  readonly reference?: string;
  /**
   * 'required': a base model is given separately and task vectors are taken against it;
   * 'optional': the same when the recipe names a base_model, else the models alone are merged;
   * 'none': no base (a base_model must be listed among the models).
   */
  readonly base: 'required' | 'optional' | 'none';
  /** How many models (the base not counted) the method merges. */
  readonly models: { readonly min: number; readonly max?: number };
  readonly params: readonly ParamSpec[];
  /**
   * True when, with these parameters, each output element depends only on the same element of the
   * inputs (no whole-tensor statistic such as top-k, an L1 norm or a cosine), so the tensor may be
   * merged in row blocks.
   */
  elementwise(input: {
    readonly params: ResolvedParams;
    readonly models: readonly { readonly params: ResolvedParams }[];
  }): boolean;
  merge(input: MethodInput): FloatArray;
  /**
   * For methods that are mergekit's generalized task arithmetic: its options, which let the executor
   * run a whole tensor on the worker pool (generalizedTaskArithmeticOnPool) with the same result.
   */
  readonly gta?: GtaOptions;
}
