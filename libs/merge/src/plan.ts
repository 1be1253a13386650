/**
 * The merge plan: from a validated Recipe and the models' folders (config.json and safetensors headers
 * only; no weight is read), every output tensor with its sources, shapes, dtypes and parameters
 * (gradients and filters resolved), the vocabulary cropping, the output size and the peak memory the
 * merge needs under a memory bound. Everything that can be refused before a byte of weights is read is
 * refused here, with an error naming the model folder, the tensor and the recipe field.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  Checkpoint,
  CheckpointNotFoundError,
  DTYPE_SIZES,
  READ_CHUNK_BYTES,
  isFloatDType,
  shapeSize,
  type CheckpointTensorInfo,
  type DType,
} from '@hm3/tensor';
import {
  architectureFromConfig,
  architectureMismatch,
  classifyTensor,
  expectedTensors,
  isVocabularyTensor,
  type Architecture,
  type TensorRole,
} from './architecture.js';
import type { MergeMethod, ResolvedParams } from './method.js';
import {
  computeDtype,
  modelKey,
  recipeToDocument,
  type ModelRef,
  type Recipe,
  type RecipeSlice,
} from './recipe.js';
import { getMethod } from './registry.js';
import { gradientT, resolveTensorParameters } from './tensor-parameters.js';
import { paddedRows, planRowMap, type RowMap } from './tokenizer-merge.js';
import {
  buildVocabulary,
  readModelTokenizer,
  type ModelTokenizer,
  type OutputVocabulary,
  type VocabularySource,
} from './vocabulary.js';
import {
  ArchitectureMismatchError,
  InvalidModelConfigError,
  MemoryBudgetError,
  MissingTensorError,
  ModelNotFoundError,
  OutputExistsError,
  TensorDTypeError,
  TensorShapeMismatchError,
  UnsupportedRecipeError,
  formatBytes,
} from './validate.js';

/** One model of the recipe, as found on disk. */
export interface PlannedModel {
  /** modelKey(ref): the model's identity in the recipe. */
  readonly key: string;
  readonly ref: ModelRef;
  /** The recipe field that names it (`base_model`, `models[2].model`). */
  readonly field: string;
  /** Absolute path of its folder. */
  readonly dir: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly architecture: Architecture;
}

/** Where one input of an output tensor comes from. */
export interface TensorSource {
  readonly modelKey: string;
  readonly dir: string;
  /** The tensor's name in that checkpoint (lm_head.weight may come from a tied model's embed_tokens.weight). */
  readonly tensor: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface PlannedModelInput {
  readonly id: string;
  readonly source: TensorSource;
  readonly params: ResolvedParams;
}

export interface PlannedTensor {
  readonly name: string;
  readonly role: TensorRole;
  /** The output shape (vocabulary tensors cropped to the common vocabulary). */
  readonly shape: readonly number[];
  readonly outDtype: DType;
  /** 'merge': the method runs on it; 'copy': a non-float tensor passed through from the reference model. */
  readonly kind: 'merge' | 'copy';
  /** The base tensor (methods that take a base), else null. */
  readonly base: TensorSource | null;
  readonly models: readonly PlannedModelInput[];
  /** For 'copy': the reference model's tensor. */
  readonly copyFrom: TensorSource | null;
  readonly params: ResolvedParams;
  /** Rows of the source that are read (< the source's rows when the vocabulary is cropped). */
  readonly rows: number;
  /** Elements of one row (the product of the dimensions after the first; 1 for a vector). */
  readonly rowElements: number;
  /** Output bytes. */
  readonly outputBytes: number;
  /** Input bytes read (every source). */
  readonly inputBytes: number;
  /** The method is element-wise for this tensor's parameters, so it can run on row blocks. */
  readonly elementwise: boolean;
  /** Rows per block under the memory bound (= rows: the whole tensor at once). */
  readonly rowsPerBlock: number;
  /** Bytes of buffers the merge of one block of this tensor holds at its peak. */
  readonly peakBytes: number;
  /**
   * Embeddings and head under a rebuilt vocabulary (tokenizer_source): where each input's rows come
   * from; the inputs are the base (when the tensor has one) then the models. Absent or null: row r of
   * every input is its row r.
   */
  readonly rowMap?: RowMap | null;
}

/** The vocabulary a tokenizer merge builds (tokenizer_source / the `tokenizer:` block). */
export interface PlannedVocabulary {
  readonly output: OutputVocabulary;
  /** Tokens in the vocabulary. */
  readonly tokens: number;
  /** Embedding rows (tokens padded to pad_to_multiple_of). */
  readonly rows: number;
  /** Tokens the reference model's tokenizer does not have. */
  readonly newTokens: number;
}

export interface MergePlan {
  readonly recipe: Recipe;
  readonly method: MergeMethod;
  readonly computeDtype: 'F32' | 'F64';
  /** The model whose config, tokenizer and tensor list the output takes: the base, else the first model. */
  readonly reference: PlannedModel;
  readonly models: readonly PlannedModel[];
  readonly tensors: readonly PlannedTensor[];
  /** Rows of the embeddings and head in the output. */
  readonly vocabSize: number;
  /** The output's num_hidden_layers when slices restack layers; null: the reference's. */
  readonly outputLayers: number | null;
  readonly vocabCropped: boolean;
  /** The rebuilt vocabulary (tokenizer_source or the `tokenizer:` block); null: the common vocabulary. */
  readonly vocabulary?: PlannedVocabulary | null;
  readonly warnings: readonly string[];
  readonly outputBytes: number;
  readonly inputBytes: number;
  /** The peak of tensor buffers over the whole merge (the largest block's), within maxMemory. */
  readonly peakMemoryBytes: number;
  readonly maxMemory: number;
  /** The largest block's element count (buffer sizes the executor allocates once). */
  readonly maxBlockElements: number;
  readonly recipeSha256: string;
}

export interface PlanOptions {
  /** Folder relative model paths are resolved against (default: the working directory, as mergekit). */
  readonly modelRoot?: string;
  /** Maps a model reference to its folder (registries, artifact stores); default: a path under modelRoot. */
  readonly resolveModel?: (ref: ModelRef, field: string) => string;
  /** Bound on the tensor buffers of the merge, in bytes (default: unbounded). */
  readonly maxMemory?: number;
  /** Names the recipe in errors (its file). */
  readonly source?: string;
}

/** Bytes of fixed overhead per block besides the arrays (the reader's chunk is counted per element). */
const BLOCK_OVERHEAD_BYTES = 0;

/** The hash recorded in the output's metadata: sha256 of the recipe as a canonical mergekit document. */
export function recipeSha256(recipe: Recipe): string {
  return createHash('sha256')
    .update(canonicalJson(recipeToDocument(recipe)))
    .digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value);
}

/**
 * Whether `method` with these per-model parameters is element-wise (each output element depends only on
 * the same element of the inputs), so a tensor can be merged row block by row block. Sparsifying methods
 * are element-wise only at density 1 (no top-k, no random mask); slerp never is (it uses norms).
 */
export function isElementwise(
  method: MergeMethod,
  models: readonly { params: ResolvedParams }[],
  params?: ResolvedParams,
): boolean {
  switch (method.name) {
    case 'linear':
    case 'task_arithmetic':
      return true;
    case 'ties':
    case 'dare_linear':
    case 'dare_ties':
    case 'breadcrumbs':
    case 'breadcrumbs_ties':
      return models.every((m) => {
        const d = m.params['density'];
        return typeof d !== 'number' || d >= 1;
      });
    case 'slerp':
      return false;
    default:
      // the other methods declare it themselves (nearswap, ram, passthrough: always)
      return method.elementwise({ params: params ?? {}, models });
  }
}

/**
 * Bytes the merge of `elements` elements holds at once: the source arrays, the task vectors (methods
 * with a base), the output, a mixing buffer, sign and mask bytes, the encoded output and the reader's
 * raw chunk (at most one block of the widest source dtype, and at most READ_CHUNK_BYTES).
 */
export function blockBytes(
  elements: number,
  sources: number,
  deltas: number,
  computeBytes: number,
  outBytes: number,
  rawBytes: number,
): number {
  return (
    elements * (computeBytes * (sources + deltas + 2) + 2 + outBytes) +
    Math.min(elements * rawBytes, READ_CHUNK_BYTES)
  );
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Throws OutputExistsError when `outDir` exists and is not an empty folder. */
export async function checkOutputDir(outDir: string): Promise<void> {
  const out = path.resolve(outDir);
  try {
    const s = await stat(out);
    if (!s.isDirectory() || (await readdir(out)).length > 0) throw new OutputExistsError(out);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
}

interface LoadedModel extends PlannedModel {
  readonly tensors: ReadonlyMap<string, CheckpointTensorInfo>;
}

async function loadModel(ref: ModelRef, field: string, options: PlanOptions): Promise<LoadedModel> {
  const dir = path.resolve(
    options.resolveModel?.(ref, field) ?? path.resolve(options.modelRoot ?? process.cwd(), ref.uri),
  );
  if (!(await isDirectory(dir))) throw new ModelNotFoundError(dir, field, 'no such model folder');
  const configPath = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ModelNotFoundError(dir, field, 'the model folder has no config.json', error);
    throw error;
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new InvalidModelConfigError(configPath, field, `not JSON (${(error as Error).message})`, error);
  }
  const architecture = architectureFromConfig(config, configPath);
  let checkpoint: Checkpoint;
  try {
    checkpoint = await Checkpoint.open(dir);
  } catch (error) {
    if (error instanceof CheckpointNotFoundError)
      throw new ModelNotFoundError(dir, field, error.message, error);
    throw error;
  }
  const tensors = new Map(checkpoint.tensors().map((t) => [t.name, t]));
  await checkpoint.close();
  return {
    key: modelKey(ref),
    ref,
    field,
    dir,
    config: config as Record<string, unknown>,
    architecture,
    tensors,
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The tensor `name` of `model`, as a source: an absent lm_head.weight of a model with tied embeddings
 * reads its embed_tokens.weight; anything else absent is a MissingTensorError.
 */
function sourceOf(model: LoadedModel, name: string): TensorSource {
  let info = model.tensors.get(name);
  if (info === undefined && name === 'lm_head.weight' && model.architecture.tieWordEmbeddings) {
    info = model.tensors.get('model.embed_tokens.weight');
  }
  if (info === undefined) throw new MissingTensorError(model.dir, name, model.field);
  return { modelKey: model.key, dir: model.dir, tensor: info.name, dtype: info.dtype, shape: info.shape };
}

/**
 * Plans the merge of `recipe`: reads every model's config.json and safetensors headers, checks them
 * against each other and against the method, and sizes the work under `options.maxMemory`.
 */
export async function planMerge(recipe: Recipe, options: PlanOptions = {}): Promise<MergePlan> {
  const source = options.source ?? 'recipe';
  const method = getMethod(recipe.method, { source });
  const maxMemory = options.maxMemory ?? Number.POSITIVE_INFINITY;
  const cd = computeDtype(recipe);
  const computeBytes = DTYPE_SIZES[cd];

  // Every model once: the base first, then the models in recipe order.
  const refs: { ref: ModelRef; field: string }[] = [];
  const seen = new Set<string>();
  if (recipe.base !== null) {
    refs.push({ ref: recipe.base, field: 'base_model' });
    seen.add(modelKey(recipe.base));
  }
  recipe.models.forEach((m, i) => {
    const key = modelKey(m.ref);
    if (!seen.has(key)) refs.push({ ref: m.ref, field: `models[${i}].model` });
    seen.add(key);
  });
  (recipe.slices ?? []).forEach((s, k) => {
    if (s.base !== null && !seen.has(modelKey(s.base))) {
      refs.push({ ref: s.base, field: `slices[${k}].base_model` });
      seen.add(modelKey(s.base));
    }
  });
  const loaded: LoadedModel[] = [];
  for (const { ref, field } of refs) loaded.push(await loadModel(ref, field, options));
  const byKey = new Map(loaded.map((m) => [m.key, m]));
  const reference = loaded[0]!;

  const warnings: string[] = [];
  for (const m of loaded.slice(1)) {
    // slices restack layers: models may differ in depth
    const diff = architectureMismatch(
      reference.architecture,
      recipe.slices ? { ...m.architecture, numLayers: reference.architecture.numLayers } : m.architecture,
    );
    if (diff !== null) {
      throw new ArchitectureMismatchError(
        path.join(m.dir, 'config.json'),
        m.field,
        diff,
        path.join(reference.dir, 'config.json'),
      );
    }
  }
  // Every model holds the tensors its config implies (tied lm_head aside).
  for (const m of loaded) {
    for (const spec of expectedTensors(m.architecture)) {
      if (!m.tensors.has(spec.name)) {
        throw new MissingTensorError(m.dir, spec.name, m.field, `its config.json implies it`);
      }
    }
  }

  // A rebuilt vocabulary (tokenizer_source), else the common one: the fewest embedding rows of any model.
  const vocabulary = await planVocabulary(recipe, loaded);
  const vocabRows = loaded.map((m) => sourceOf(m, 'model.embed_tokens.weight').shape[0] ?? 0);
  const vocabSize = vocabulary?.rows ?? Math.min(...vocabRows);
  const vocabCropped = vocabulary === null && vocabRows.some((r) => r !== vocabSize);
  if (vocabCropped) {
    warnings.push(
      `vocabulary sizes differ (${loaded.map((m, i) => `${m.key}: ${vocabRows[i]}`).join(', ')}); ` +
        `embeddings and head are cropped to the common ${vocabSize} rows`,
    );
  }

  const tensors: PlannedTensor[] = [];
  const extraNames = new Set<string>();
  const jobs = recipe.slices
    ? sliceJobs(recipe, recipe.slices, byKey, source)
    : wholeModelJobs(recipe, reference);
  for (const job of jobs) {
    const { name, info, view } = job;
    const role = classifyTensor(name);
    const vocabTensor = isVocabularyTensor(name);
    const rows = vocabTensor ? vocabSize : (info.shape[0] ?? 1);
    const shape = vocabTensor ? [vocabSize, ...info.shape.slice(1)] : [...info.shape];
    const rowElements = info.shape.length === 0 ? 1 : shapeSize(info.shape.slice(1));
    const elements = shapeSize(shape);

    if (!isFloatDType(info.dtype)) {
      if (vocabulary !== null && vocabTensor)
        throw new TensorDTypeError(
          job.copyModel.dir,
          name,
          job.copyModel.field,
          `dtype ${info.dtype} is not a float dtype; a tokenizer merge rebuilds its rows`,
        );
      const copyFrom = sourceOf(job.copyModel, job.inputName(job.copyModel.key));
      const bytes = elements * DTYPE_SIZES[info.dtype];
      tensors.push({
        name,
        role,
        shape,
        outDtype: info.dtype,
        kind: 'copy',
        base: null,
        models: [],
        copyFrom,
        params: {},
        rows,
        rowElements,
        outputBytes: bytes,
        inputBytes: bytes,
        elementwise: true,
        rowsPerBlock: rows,
        peakBytes: bytes,
      });
      continue;
    }

    const t = job.t ?? gradientT(role.layerIndex, reference.architecture.numLayers);
    const resolved = resolveTensorParameters(view, method, name, t);
    const check = (m: LoadedModel): TensorSource => {
      const src = sourceOf(m, job.inputName(m.key));
      if (!isFloatDType(src.dtype)) {
        throw new TensorDTypeError(
          m.dir,
          name,
          m.field,
          `dtype ${src.dtype} is not a float dtype; the base has ${info.dtype}`,
        );
      }
      const rowsNeeded = vocabulary === null ? vocabSize : m.architecture.vocabSize;
      const ok = vocabTensor
        ? (src.shape[0] ?? 0) >= rowsNeeded && sameShape(src.shape.slice(1), info.shape.slice(1))
        : sameShape(src.shape, info.shape);
      if (!ok) throw new TensorShapeMismatchError(m.dir, name, m.field, src.shape, info.shape, reference.dir);
      return src;
    };
    const base = method.base !== 'none' && view.base !== null ? check(byKey.get(modelKey(view.base))!) : null;
    const models = resolved.models.map((pm) => ({
      id: pm.id,
      source: check(byKey.get(pm.id)!),
      params: pm.params,
    }));
    if (resolved.params['scope'] === 'global' && method.name.startsWith('della')) {
      throw new UnsupportedRecipeError(
        source,
        'parameters.scope',
        `scope: global is not supported by ${method.name} (its keep probabilities rank within rows); use scope: tensor`,
      );
    }
    const outDtype: DType = recipe.outDtype ?? recipe.dtype ?? info.dtype;
    const sources = models.length + (base === null ? 0 : 1);
    const deltas = base !== null ? models.length : 0;
    let rowMap: RowMap | null = null;
    if (vocabulary !== null && vocabTensor) {
      const inputs = [...(base === null ? [] : [base]), ...models.map((m) => m.source)].map((src) => ({
        key: src.modelKey,
        tokenizer: vocabulary.tokenizers.get(src.modelKey)!,
        tensorRows: src.shape[0] ?? 0,
      }));
      const baseKey = view.base === null ? null : modelKey(view.base);
      const baseIndex = inputs.findIndex((i) => i.key === baseKey);
      rowMap = planRowMap(
        vocabulary.output,
        inputs,
        baseIndex < 0 ? null : baseIndex,
        recipe.tokenizer?.tokens ?? [],
        recipe.tokenizer?.padToMultipleOf ?? null,
      );
    }
    if (rowMap !== null && rowMap.noRow.length > 0) {
      const list = rowMap.noRow.slice(0, 5).map((x) => JSON.stringify(x));
      warnings.push(
        `${name}: ${rowMap.noRow.length} token(s) of the vocabulary are in none of this tensor's models and get a zero row: ${list.join(', ')}${rowMap.noRow.length > 5 ? ', ...' : ''}`,
      );
    }
    // assembling rows in a new vocabulary holds the block's default rows and one read run besides
    const assembly = rowMap === null ? 0 : 2;
    const rawBytes = Math.max(
      ...models.map((m) => DTYPE_SIZES[m.source.dtype]),
      base === null ? 0 : DTYPE_SIZES[base.dtype],
    );
    const bytesFor = (r: number) =>
      blockBytes(r * rowElements, sources + assembly, deltas, computeBytes, DTYPE_SIZES[outDtype], rawBytes);
    const perRow = bytesFor(1);
    const elementwise = isElementwise(method, models, resolved.params);
    const whole = bytesFor(Math.max(rows, 1)) + BLOCK_OVERHEAD_BYTES;
    let rowsPerBlock = Math.max(rows, 1);
    if (whole > maxMemory) {
      if (!elementwise || rows <= 1) {
        throw new MemoryBudgetError(name, whole, maxMemory, `${method.name} merges it whole`);
      }
      if (perRow + BLOCK_OVERHEAD_BYTES > maxMemory) {
        throw new MemoryBudgetError(name, perRow + BLOCK_OVERHEAD_BYTES, maxMemory, 'one row');
      }
      rowsPerBlock = Math.floor((maxMemory - BLOCK_OVERHEAD_BYTES) / perRow);
      while (rowsPerBlock > 1 && bytesFor(rowsPerBlock) + BLOCK_OVERHEAD_BYTES > maxMemory) rowsPerBlock--;
    }
    const inputBytes =
      (base === null ? 0 : rows * rowElements * DTYPE_SIZES[base.dtype]) +
      models.reduce((s, m) => s + rows * rowElements * DTYPE_SIZES[m.source.dtype], 0);
    tensors.push({
      name,
      role,
      shape,
      outDtype,
      kind: 'merge',
      base,
      models,
      copyFrom: null,
      params: resolved.params,
      rows,
      rowElements,
      outputBytes: elements * DTYPE_SIZES[outDtype],
      inputBytes,
      elementwise,
      rowsPerBlock,
      peakBytes: bytesFor(Math.min(rowsPerBlock, Math.max(rows, 1))) + BLOCK_OVERHEAD_BYTES,
      ...(rowMap === null ? {} : { rowMap }),
    });
  }
  for (const m of recipe.slices ? [] : loaded.slice(1)) {
    for (const n of m.tensors.keys()) if (!reference.tensors.has(n)) extraNames.add(n);
  }
  if (extraNames.size > 0) {
    const list = [...extraNames].slice(0, 5).join(', ');
    warnings.push(
      `${extraNames.size} tensor(s) not in the base (${reference.dir}) are left out: ${list}${extraNames.size > 5 ? ', ...' : ''}`,
    );
  }

  const sum = (f: (t: PlannedTensor) => number) => tensors.reduce((s, t) => s + f(t), 0);
  return {
    recipe,
    method,
    computeDtype: cd,
    reference,
    models: loaded.map(({ tensors: _t, ...m }) => m),
    tensors,
    vocabSize,
    vocabCropped,
    vocabulary:
      vocabulary === null
        ? null
        : {
            output: vocabulary.output,
            tokens: vocabulary.output.tokens.length,
            rows: vocabulary.rows,
            newTokens: vocabulary.output.tokens.filter(
              (t) => !vocabulary.tokenizers.get(reference.key)!.vocab.has(t),
            ).length,
          },
    outputLayers: recipe.slices
      ? recipe.slices.reduce((n, s) => n + s.sources[0]!.layerRange[1] - s.sources[0]!.layerRange[0], 0)
      : null,
    warnings,
    outputBytes: sum((t) => t.outputBytes),
    inputBytes: sum((t) => t.inputBytes),
    peakMemoryBytes: tensors.reduce((p, t) => Math.max(p, t.peakBytes), 0),
    maxMemory,
    maxBlockElements: tensors.reduce(
      (p, t) =>
        Math.max(p, t.kind === 'merge' ? Math.min(t.rowsPerBlock, Math.max(t.rows, 1)) * t.rowElements : 0),
      0,
    ),
    recipeSha256: recipeSha256(recipe),
  };
}

/**
 * The vocabulary of a tokenizer merge: every model's tokenizer.json (the reference's first), the output
 * vocabulary built from them, and its rows; null without tokenizer_source.
 */
async function planVocabulary(
  recipe: Recipe,
  loaded: readonly LoadedModel[],
): Promise<{ output: OutputVocabulary; tokenizers: Map<string, ModelTokenizer>; rows: number } | null> {
  const ts = recipe.tokenizerSource;
  if (ts === null) return null;
  const tokenizers = new Map<string, ModelTokenizer>();
  for (const m of loaded)
    tokenizers.set(m.key, await readModelTokenizer(m.dir, m.field, m.architecture.vocabSize));
  const source: VocabularySource = ts.kind === 'model' ? { kind: 'model', key: modelKey(ts.model) } : ts;
  const output = buildVocabulary(
    source,
    tokenizers,
    (recipe.tokenizer?.tokens ?? []).map((t) => t.token),
  );
  return {
    output,
    tokenizers,
    rows: paddedRows(output.tokens.length, recipe.tokenizer?.padToMultipleOf ?? null),
  };
}

/** One output tensor to plan: where its inputs come from and which recipe (slice) parameterises it. */
interface TensorJob {
  /** The output name. */
  readonly name: string;
  /** The tensor as found in the model that gives the output its shape and dtype. */
  readonly info: CheckpointTensorInfo;
  /** The tensor's name in the model of that key (a slice renumbers layers). */
  readonly inputName: (modelKey: string) => string;
  /** The recipe as this tensor sees it: a slice's sources, base and parameters, or the whole recipe. */
  readonly view: Recipe;
  /** Gradient position; null: from the output layer index. */
  readonly t: number | null;
  /** The model non-float tensors are copied from. */
  readonly copyModel: LoadedModel;
}

function wholeModelJobs(recipe: Recipe, reference: LoadedModel): TensorJob[] {
  return [...reference.tensors.values()].map((info) => ({
    name: info.name,
    info,
    inputName: () => info.name,
    view: recipe,
    t: null,
    copyModel: reference,
  }));
}

/** The recipe restricted to one slice: its sources as the models, its base, its parameters over the top level. */
function sliceView(recipe: Recipe, slice: RecipeSlice): Recipe {
  return {
    ...recipe,
    base: slice.base,
    models: slice.sources.map((s) => ({ ref: s.ref, isBase: s.isBase, parameters: s.parameters })),
    parameters: { ...recipe.parameters, ...slice.parameters },
  };
}

/**
 * The tensors of a frankenmerge (mergekit's planner): the embeddings and other pre-layer tensors merged
 * over the first slice's sources (t = 0), then each slice's layers i = 0..n-1 renumbered consecutively,
 * source j contributing its layer start_j + i, gradients at t = i / (n - 1) (t = 1 when n = 1), then the
 * final norm and head merged over the last slice's sources (t = 0).
 */
function sliceJobs(
  recipe: Recipe,
  slices: readonly RecipeSlice[],
  byKey: ReadonlyMap<string, LoadedModel>,
  source: string,
): TensorJob[] {
  const jobs: TensorJob[] = [];
  const firstOf = (slice: RecipeSlice) => byKey.get(modelKey(slice.sources[0]!.ref))!;
  const whole = (slice: RecipeSlice, keep: (kind: string) => boolean) => {
    const model = firstOf(slice);
    for (const info of model.tensors.values()) {
      const role = classifyTensor(info.name);
      if (role.kind === 'layer' || !keep(role.kind)) continue;
      jobs.push({
        name: info.name,
        info,
        inputName: () => info.name,
        view: sliceView(recipe, slice),
        t: 0,
        copyModel: model,
      });
    }
  };
  whole(slices[0]!, (kind) => kind === 'embedding' || kind === 'other');
  let outLayer = 0;
  slices.forEach((slice, k) => {
    const first = firstOf(slice);
    const [start0, end0] = slice.sources[0]!.layerRange;
    const n = end0 - start0;
    slice.sources.forEach((s, j) => {
      const m = byKey.get(modelKey(s.ref))!;
      if (s.layerRange[1] > m.architecture.numLayers) {
        throw new UnsupportedRecipeError(
          source,
          `slices[${k}].sources[${j}].layer_range`,
          `layers [${s.layerRange[0]}, ${s.layerRange[1]}) of ${m.dir}, which has ${m.architecture.numLayers}`,
        );
      }
    });
    const startOf = new Map(slice.sources.map((s) => [modelKey(s.ref), s.layerRange[0]]));
    if (slice.base !== null && !startOf.has(modelKey(slice.base))) startOf.set(modelKey(slice.base), start0);
    const view = sliceView(recipe, slice);
    for (let i = 0; i < n; i++) {
      const prefix = `model.layers.${start0 + i}.`;
      for (const info of first.tensors.values()) {
        if (!info.name.startsWith(prefix)) continue;
        const suffix = info.name.slice(prefix.length);
        jobs.push({
          name: `model.layers.${outLayer}.${suffix}`,
          info,
          inputName: (key) => `model.layers.${(startOf.get(key) ?? start0) + i}.${suffix}`,
          view,
          t: n > 1 ? i / (n - 1) : 1,
          copyModel: first,
        });
      }
      outLayer++;
    }
  });
  whole(slices[slices.length - 1]!, (kind) => kind === 'final_norm' || kind === 'head');
  return jobs;
}

function vocabularyLine(plan: MergePlan): string {
  const v = plan.vocabulary;
  if (v === undefined || v === null)
    return `${plan.vocabSize}${plan.vocabCropped ? ' (cropped to the common size)' : ''}`;
  const s = v.output.source;
  const from =
    s.kind === 'union'
      ? `union of ${plan.models.length} tokenizers`
      : s.kind === 'base'
        ? `the base's tokenizer`
        : `the tokenizer of ${s.key}`;
  const padded =
    v.rows === v.tokens
      ? ''
      : `, ${v.rows} rows (padded to a multiple of ${plan.recipe.tokenizer?.padToMultipleOf})`;
  return `${v.tokens} tokens (${from}; ${v.newTokens} not in ${plan.reference.key})${padded}; vocab_size ${v.rows}`;
}

/** The plan in a few lines (`hm3 merge --validate`). */
export function formatPlanSummary(plan: MergePlan): string {
  const merged = plan.tensors.filter((t) => t.kind === 'merge');
  const blocked = merged.filter((t) => t.rowsPerBlock < t.rows);
  const dtypes = [...new Set(plan.tensors.map((t) => t.outDtype))].join(', ');
  const lines = [
    `method        ${plan.method.name} (compute ${plan.computeDtype.toLowerCase()})`,
    `base          ${plan.reference.dir}${plan.recipe.base === null ? ' (first model: config and tokenizer)' : ''}`,
    ...plan.models.filter((m) => m !== plan.models[0]).map((m) => `model         ${m.dir}`),
    `architecture  ${plan.reference.architecture.family}, ${plan.outputLayers === null ? `${plan.reference.architecture.numLayers} layers` : `${plan.outputLayers} layers from ${plan.recipe.slices?.length ?? 0} slices`}, hidden ${plan.reference.architecture.hiddenSize}`,
    `tensors       ${plan.tensors.length} (${merged.length} merged, ${plan.tensors.length - merged.length} copied), ${blocked.length} in row blocks`,
    `vocabulary    ${vocabularyLine(plan)}`,
    `output        ${formatBytes(plan.outputBytes)} (${dtypes})`,
    `input read    ${formatBytes(plan.inputBytes)}`,
    `peak memory   ${formatBytes(plan.peakMemoryBytes)} of tensor buffers (max ${formatBytes(plan.maxMemory)})`,
    `recipe sha256 ${plan.recipeSha256}`,
  ];
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
