/**
 * Merge recipes: mergekit YAML as-is and the proto MergeRecipe, both validated into one typed Recipe.
 * Structure is checked by zod; method parameters by the method's own declarations (registry), so
 * unknown keys, misspelt methods and parameters, and out-of-range values are errors naming the field's
 * path, e.g. `models[1].parameters.density`.
 */
import { common } from '@hm3/proto';
import type { FloatDType } from '@hm3/tensor';
import { isDocument, parseDocument } from 'yaml';
import { z } from 'zod';
import { RecipeValidationError, UnknownMethodError, type RecipeIssue } from './errors.js';
import type { MergeMethod, ParamScalar, ParamSpec } from './method.js';
import { closestName, hasMethod, getMethod, listMethods } from './registry.js';

/** Element types of checkpoints and of the arithmetic (the checkpoint dtypes of @hm3/tensor). */
export type DType = FloatDType;

/** A model reference: a registry id and/or a location (a path in the model roots, or artifact://id). */
export interface ModelRef {
  readonly uri: string;
  readonly modelId: string;
}

/** The identity of a model within a recipe: its registry id if it has one, else its uri. */
export function modelKey(ref: ModelRef): string {
  return ref.modelId !== '' ? ref.modelId : ref.uri;
}

/** A parameter as written: one value, a gradient over the layers, or values chosen by tensor name. */
export type ParamSetting =
  | { readonly kind: 'value'; readonly value: ParamScalar }
  | { readonly kind: 'gradient'; readonly values: readonly number[] }
  | {
      readonly kind: 'filtered';
      /** First match wins; a null filter matches every tensor. */
      readonly entries: readonly {
        readonly filter: string | null;
        readonly value: ParamScalar | readonly number[];
      }[];
    };

export interface RecipeModel {
  readonly ref: ModelRef;
  /** This entry is the base model (listed among the models, as mergekit allows). */
  readonly isBase: boolean;
  readonly parameters: Readonly<Record<string, ParamSetting>>;
}

/** One input of a slice: layers [start, end) of a model. */
export interface RecipeSliceSource {
  readonly ref: ModelRef;
  readonly layerRange: readonly [number, number];
  /** This source is the slice's base model. */
  readonly isBase: boolean;
  readonly parameters: Readonly<Record<string, ParamSetting>>;
}

/** One output slice of a frankenmerge: the method merges its sources layer by layer. */
export interface RecipeSlice {
  readonly sources: readonly RecipeSliceSource[];
  /** The slice's base model (else the recipe's). */
  readonly base: ModelRef | null;
  /** Parameters of this slice: over the top-level ones, under each source's own. */
  readonly parameters: Readonly<Record<string, ParamSetting>>;
}

export type TokenizerSource =
  | { readonly kind: 'base' }
  | { readonly kind: 'union' }
  | { readonly kind: 'model'; readonly model: ModelRef };

/** Where the embedding row of a token named in `tokenizer.tokens` comes from (mergekit's TokenEmbeddingConfig.source). */
export type TokenRowSource =
  /** A zero row. */
  | { readonly kind: 'zero' }
  /** The token's own row in that model. */
  | { readonly kind: 'model'; readonly model: ModelRef }
  /** The row of another token (by id, or by its text in that model's vocabulary) of that model. */
  | {
      readonly kind: 'model_token';
      readonly model: ModelRef;
      readonly tokenId: number | null;
      readonly token: string | null;
    };

/** One entry of `tokenizer.tokens`: the token (added to the vocabulary when absent) and its row. */
export interface TokenOverride {
  readonly token: string;
  readonly source: TokenRowSource;
  /** Every model takes this row, even one that has the token. */
  readonly force: boolean;
}

/** The `tokenizer:` block beyond its source (which is Recipe.tokenizerSource). */
export interface RecipeTokenizer {
  readonly tokens: readonly TokenOverride[];
  /** Embedding rows are padded up to a multiple of this (the padding rows: each model's mean row). */
  readonly padToMultipleOf: number | null;
}

/** A validated merge recipe: what the planner and executor consume (never raw YAML or wire types). */
export interface Recipe {
  readonly method: string;
  readonly base: ModelRef | null;
  readonly models: readonly RecipeModel[];
  /** Top-level parameters: the defaults of every model, and the global parameters. */
  readonly parameters: Readonly<Record<string, ParamSetting>>;
  /** The dtype of the arithmetic as written (f64: compute in f64; anything else: f32); null: not set. */
  readonly dtype: DType | null;
  /** The written checkpoint's dtype; null: the same as dtype, or the base's. */
  readonly outDtype: DType | null;
  readonly seed: bigint;
  /** null: crop embeddings to the vocabulary common to all models. */
  readonly tokenizerSource: TokenizerSource | null;
  /** The `tokenizer:` block (its source is tokenizerSource); absent or null: not written. */
  readonly tokenizer?: RecipeTokenizer | null;
  /**
   * Layer-range slices (frankenmerges), stacked in order; absent or null: whole models. With slices,
   * `models` lists every model the slices use once (without parameters).
   */
  readonly slices?: readonly RecipeSlice[] | null;
  readonly chatTemplate: string | null;
}

/** The dtype the arithmetic of a recipe runs in: f64 only when asked for. */
export function computeDtype(recipe: Recipe): 'F32' | 'F64' {
  return recipe.dtype === 'F64' ? 'F64' : 'F32';
}

const DTYPE_NAMES: Readonly<Record<string, DType>> = {
  float32: 'F32',
  fp32: 'F32',
  f32: 'F32',
  float16: 'F16',
  fp16: 'F16',
  f16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  bf16: 'BF16',
  float64: 'F64',
  fp64: 'F64',
  f64: 'F64',
  double: 'F64',
};

// ---- structure (zod) -------------------------------------------------------------------------------

const scalarSchema = z.union([z.number(), z.boolean(), z.string()]);
const gradientSchema = z.array(z.number()).min(1);
const filteredEntrySchema = z.strictObject({
  filter: z.string().nullish(),
  value: z.union([z.number(), z.boolean(), z.string(), gradientSchema]),
});
const settingSchema = z.union([scalarSchema, gradientSchema, z.array(filteredEntrySchema).min(1)]);
const parametersSchema = z.record(z.string(), settingSchema).nullish();
const dtypeSchema = z.string().refine((s) => s in DTYPE_NAMES, {
  message: `must be one of ${Object.keys(DTYPE_NAMES).join(', ')}`,
});

const documentSchema = z.strictObject({
  merge_method: z.string().min(1),
  base_model: z.string().min(1).nullish(),
  models: z
    .array(z.strictObject({ model: z.string().min(1), parameters: parametersSchema }))
    .min(1)
    .nullish(),
  slices: z
    .array(
      z.strictObject({
        sources: z
          .array(
            z.strictObject({
              model: z.string().min(1),
              layer_range: z.tuple([z.number().int().min(0), z.number().int().min(0)]),
              parameters: parametersSchema,
            }),
          )
          .min(1),
        base_model: z.string().min(1).nullish(),
        parameters: parametersSchema,
      }),
    )
    .min(1)
    .nullish(),
  parameters: parametersSchema,
  dtype: dtypeSchema.nullish(),
  out_dtype: dtypeSchema.nullish(),
  seed: z
    .union([
      z.number().int().min(0),
      z
        .bigint()
        .min(0n)
        .max((1n << 64n) - 1n),
      z
        .string()
        .regex(/^\d{1,20}$/, 'must be a non-negative integer')
        .refine((v) => BigInt(v) < 1n << 64n, 'must be below 2^64'),
    ])
    .nullish(),
  tokenizer_source: z.string().min(1).nullish(),
  tokenizer: z
    .strictObject({
      source: z.string().min(1).nullish(),
      tokens: z
        .record(
          z.string().min(1),
          z.strictObject({
            source: z
              .union([
                z.strictObject({
                  kind: z.literal('model_token'),
                  model: z.string().min(1),
                  token_id: z.number().int().min(0).nullish(),
                  token: z.string().nullish(),
                }),
                z.strictObject({ kind: z.literal('zero') }),
                z.string().min(1),
              ])
              .nullish(),
            force: z.boolean().nullish(),
          }),
        )
        .nullish(),
      pad_to_multiple_of: z.number().int().min(1).nullish(),
    })
    .nullish(),
  chat_template: z.string().nullish(),
  // The proto form also carries model ids; YAML references are uris.
  base_model_id: z.string().nullish(),
  model_ids: z.array(z.string()).nullish(),
});

type Document = z.infer<typeof documentSchema>;
type RawSetting = z.infer<typeof settingSchema>;

const KNOWN_KEYS = [
  'merge_method',
  'base_model',
  'models',
  'slices',
  'parameters',
  'dtype',
  'out_dtype',
  'seed',
  'tokenizer_source',
  'tokenizer',
  'tokens',
  'pad_to_multiple_of',
  'force',
  'kind',
  'token_id',
  'token',
  'source',
  'chat_template',
  'model',
  'filter',
  'value',
  'sources',
  'layer_range',
];

/** `['models', 1, 'parameters', 'density']` -> `models[1].parameters.density`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function zodIssues(error: z.ZodError): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const suggestion = closestName(key, KNOWN_KEYS);
        issues.push({
          path: formatPath([...issue.path, key]),
          message: `unknown key${suggestion === null ? '' : `; did you mean "${suggestion}"?`}`,
        });
      }
    } else {
      issues.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return issues;
}

// ---- method parameters (from the registry's declarations) ---------------------------------------------

function leafSchema(spec: ParamSpec): z.ZodType<ParamScalar> {
  switch (spec.kind) {
    case 'number': {
      let s = z.number(`must be a number`);
      if (spec.min !== undefined) s = s.min(spec.min, `must be >= ${spec.min}`);
      if (spec.max !== undefined) s = s.max(spec.max, `must be <= ${spec.max}`);
      return s;
    }
    case 'boolean':
      return z
        .union([z.boolean(), z.literal(0), z.literal(1)], 'must be true or false')
        .transform((v) => v === true || v === 1);
    case 'choice': {
      const choices = spec.choices ?? [];
      const map = spec.booleanChoices;
      return z.union([z.string(), z.boolean()]).transform((v, ctx) => {
        const name = typeof v === 'boolean' ? (map === undefined ? undefined : v ? map.true : map.false) : v;
        if (name === undefined || !choices.includes(name)) {
          ctx.addIssue({
            code: 'custom',
            message: `must be one of ${choices.join(', ')}${map ? ', true, false' : ''}`,
          });
          return z.NEVER;
        }
        return name;
      });
    }
  }
}

function checkLeaf(
  spec: ParamSpec,
  value: unknown,
  path: string,
  issues: RecipeIssue[],
): ParamScalar | undefined {
  const result = leafSchema(spec).safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues)
    issues.push({ path, message: `${issue.message} (got ${JSON.stringify(value)})` });
  return undefined;
}

function checkSetting(
  spec: ParamSpec,
  raw: RawSetting,
  path: string,
  issues: RecipeIssue[],
): ParamSetting | undefined {
  const before = issues.length;
  if (!Array.isArray(raw)) {
    const value = checkLeaf(spec, raw, path, issues);
    return value === undefined ? undefined : { kind: 'value', value };
  }
  if (spec.kind !== 'number') {
    issues.push({ path, message: `${spec.name} takes a single value, not a list` });
    return undefined;
  }
  if (raw.every((v) => typeof v === 'number')) {
    raw.forEach((v, j) => checkLeaf(spec, v, `${path}[${j}]`, issues));
    return issues.length === before ? { kind: 'gradient', values: raw as number[] } : undefined;
  }
  const entries: { filter: string | null; value: ParamScalar | readonly number[] }[] = [];
  raw.forEach((entry, j) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      issues.push({ path: `${path}[${j}]`, message: 'a list mixes numbers and {filter, value} entries' });
      return;
    }
    const value = entry.value;
    if (Array.isArray(value))
      value.forEach((v, m) => checkLeaf(spec, v, `${path}[${j}].value[${m}]`, issues));
    else checkLeaf(spec, value, `${path}[${j}].value`, issues);
    const filter = entry.filter ?? null;
    entries.push({ filter: filter === '*' ? null : filter, value });
  });
  return issues.length === before ? { kind: 'filtered', entries } : undefined;
}

function checkParameters(
  method: MergeMethod,
  raw: Record<string, RawSetting> | null | undefined,
  path: string,
  level: 'top' | 'model',
  issues: RecipeIssue[],
): Record<string, ParamSetting> {
  const out: Record<string, ParamSetting> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    const spec = method.params.find((p) => p.name === name);
    const fieldPath = `${path}.${name}`;
    if (spec === undefined) {
      const suggestion = closestName(
        name,
        method.params.map((p) => p.name),
      );
      const known = method.params.map((p) => p.name).join(', ');
      issues.push({
        path: fieldPath,
        message: `unknown parameter of method ${method.name}${suggestion === null ? '' : `; did you mean "${suggestion}"?`} (parameters: ${known})`,
      });
      continue;
    }
    if (level === 'model' && spec.scope === 'global') {
      issues.push({
        path: fieldPath,
        message: `${name} is a global parameter of ${method.name}; set it in the top-level parameters`,
      });
      continue;
    }
    const setting = checkSetting(spec, value, fieldPath, issues);
    if (setting !== undefined) out[name] = setting;
  }
  return out;
}

/** A copy of `value` without the unrecognized keys zod reported. */
function withoutKeys(value: unknown, issues: readonly z.core.$ZodIssue[]): unknown {
  const copy = structuredClone(value) as Record<PropertyKey, unknown>;
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    let node: unknown = copy;
    for (const part of issue.path) node = (node as Record<PropertyKey, unknown> | undefined)?.[part];
    if (node !== null && typeof node === 'object')
      for (const key of issue.keys) delete (node as Record<string, unknown>)[key];
  }
  return copy;
}

// ---- the document -> Recipe ------------------------------------------------------------------------

export interface RecipeSourceOptions {
  /** Names the recipe in errors (a file path, or "MergeRecipe"). */
  readonly source?: string;
  /** Renames top-level fields in error paths (the proto calls merge_method `method`). */
  readonly fieldNames?: Readonly<Record<string, string>>;
}

function renamePath(path: string, names: Readonly<Record<string, string>> | undefined): string {
  if (names === undefined) return path;
  const m = /^([a-z_]+)(.*)$/.exec(path);
  if (m === null) return path;
  return (names[m[1]!] ?? m[1]!) + m[2]!;
}

function fail(
  source: string,
  issues: RecipeIssue[],
  names: Readonly<Record<string, string>> | undefined,
): never {
  throw new RecipeValidationError(
    source,
    issues.map((i) => ({ path: renamePath(i.path, names), message: i.message })),
  );
}

/**
 * Validates a recipe document (the parsed YAML, or the proto mapped to the same shape) into a Recipe.
 * Throws RecipeValidationError listing every issue with its field path (UnknownMethodError for a method
 * name that is not registered).
 */
export function validateRecipeDocument(document: unknown, options: RecipeSourceOptions = {}): Recipe {
  const source = options.source ?? 'recipe';
  const names = options.fieldNames;
  let parsed = documentSchema.safeParse(document);
  // Unknown keys alone do not stop validation: they are reported with everything else found.
  let unknownKeys: RecipeIssue[] = [];
  if (!parsed.success && parsed.error.issues.every((i) => i.code === 'unrecognized_keys')) {
    unknownKeys = zodIssues(parsed.error);
    parsed = documentSchema.safeParse(withoutKeys(document, parsed.error.issues));
  }
  if (!parsed.success) fail(source, [...unknownKeys, ...zodIssues(parsed.error)], names);
  const doc: Document = parsed.data;

  if (!hasMethod(doc.merge_method)) {
    getMethod(doc.merge_method, { source, field: renamePath('merge_method', names) });
  }
  const method = getMethod(doc.merge_method);
  const issues: RecipeIssue[] = [...unknownKeys];
  const rawSlices = doc.slices ?? null;
  if (rawSlices !== null && doc.models !== undefined && doc.models !== null) {
    issues.push({ path: 'slices', message: 'give either models or slices, not both' });
  }
  const rawModels =
    rawSlices === null
      ? (doc.models ?? [])
      : [...new Set(rawSlices.flatMap((s) => s.sources.map((src) => src.model)))].map((model) => ({
          model,
          parameters: undefined,
        }));
  if (rawModels.length === 0) issues.push({ path: 'models', message: 'required: the models to merge' });

  const modelIds = doc.model_ids ?? [];
  const base: ModelRef | null =
    doc.base_model === undefined || doc.base_model === null
      ? null
      : { uri: doc.base_model, modelId: doc.base_model_id ?? '' };
  const baseKey = base === null ? null : modelKey(base);
  if (method.base === 'required' && base === null) {
    issues.push({ path: 'base_model', message: `required by method ${method.name}` });
  }

  const topParameters = checkParameters(method, doc.parameters, 'parameters', 'top', issues);
  const seen = new Map<string, number>();
  const models: RecipeModel[] = rawModels.map((m, i) => {
    const ref: ModelRef = { uri: m.model, modelId: modelIds[i] ?? '' };
    const key = modelKey(ref);
    const earlier = seen.get(key);
    if (earlier !== undefined)
      issues.push({
        path: `models[${i}].model`,
        message: `${key} is listed twice (also models[${earlier}])`,
      });
    seen.set(key, i);
    return {
      ref,
      isBase: baseKey !== null && key === baseKey,
      parameters: checkParameters(method, m.parameters, `models[${i}].parameters`, 'model', issues),
    };
  });

  if (method.base === 'none' && baseKey !== null && !models.some((m) => m.isBase)) {
    issues.push({
      path: 'base_model',
      message: `method ${method.name} takes no base model; list it under models with a weight, or remove base_model`,
    });
  }
  const slices: RecipeSlice[] | null =
    rawSlices === null ? null : checkSlices(method, rawSlices, base, topParameters, issues);
  const merged = method.base !== 'none' ? models.filter((m) => !m.isBase) : models;
  const { min, max } = method.models;
  if (
    slices === null &&
    rawModels.length > 0 &&
    (merged.length < min || (max !== undefined && merged.length > max))
  ) {
    const wanted =
      max === undefined ? `at least ${min}` : min === max ? `exactly ${min}` : `${min} to ${max}`;
    const besides = method.base !== 'none' && baseKey !== null ? ' besides the base model' : '';
    issues.push({
      path: 'models',
      message: `method ${method.name} merges ${wanted} model(s)${besides}; got ${merged.length}`,
    });
  }
  for (const spec of method.params) {
    if (!spec.required) continue;
    if (spec.scope === 'global') {
      if (!(spec.name in topParameters) && !(doc.parameters && spec.name in doc.parameters)) {
        issues.push({ path: `parameters.${spec.name}`, message: `required by method ${method.name}` });
      }
      continue;
    }
    if (slices !== null) continue; // checked per slice source
    models.forEach((m, i) => {
      if (method.base !== 'none' && m.isBase) return;
      const given =
        (doc.parameters && spec.name in doc.parameters) ||
        (rawModels[i]?.parameters && spec.name in rawModels[i]!.parameters!);
      if (!given)
        issues.push({
          path: `models[${i}].parameters.${spec.name}`,
          message: `required by method ${method.name}`,
        });
    });
  }

  const { tokenizerSource, tokenizer } = checkTokenizer(doc, base, models, issues);

  if (issues.length > 0) fail(source, issues, names);
  return {
    method: method.name,
    base,
    models,
    parameters: topParameters,
    dtype: doc.dtype ? DTYPE_NAMES[doc.dtype]! : null,
    outDtype: doc.out_dtype ? DTYPE_NAMES[doc.out_dtype]! : null,
    seed: BigInt(doc.seed ?? 0),
    tokenizerSource,
    ...(tokenizer === null ? {} : { tokenizer }),
    chatTemplate: doc.chat_template ?? null,
    ...(slices === null ? {} : { slices }),
  };
}

type RawSlice = NonNullable<Document['slices']>[number];

/**
 * `tokenizer_source` or the `tokenizer:` block (mergekit's TokenizerConfig: source, default union;
 * tokens; pad_to_multiple_of), not both; every model they name must be one of the recipe's.
 */
function checkTokenizer(
  doc: Document,
  base: ModelRef | null,
  models: readonly RecipeModel[],
  issues: RecipeIssue[],
): { tokenizerSource: TokenizerSource | null; tokenizer: RecipeTokenizer | null } {
  const known = new Map<string, ModelRef>();
  for (const ref of [...(base === null ? [] : [base]), ...models.map((m) => m.ref)]) {
    known.set(ref.uri, ref);
    known.set(modelKey(ref), ref);
  }
  const lookup = (name: string, field: string): ModelRef | null => {
    const ref = known.get(name);
    if (ref !== undefined) return ref;
    const names = [...new Set(models.map((m) => m.ref.uri).concat(base === null ? [] : [base.uri]))];
    const suggestion = closestName(name, names);
    issues.push({
      path: field,
      message: `unknown model "${name}"${suggestion === null ? '' : `; did you mean "${suggestion}"?`} (the recipe's models: ${names.join(', ')})`,
    });
    return null;
  };
  const sourceOf = (value: string, field: string): TokenizerSource | null => {
    if (value === 'base' || value === 'union') return { kind: value };
    const ref = lookup(value, field);
    return ref === null ? null : { kind: 'model', model: ref };
  };
  const block = doc.tokenizer ?? null;
  if (block !== null && doc.tokenizer_source !== undefined && doc.tokenizer_source !== null) {
    issues.push({ path: 'tokenizer', message: 'give either tokenizer_source or tokenizer, not both' });
  }
  if (block === null) {
    const ts = doc.tokenizer_source;
    return {
      tokenizerSource: typeof ts === 'string' ? sourceOf(ts, 'tokenizer_source') : null,
      tokenizer: null,
    };
  }
  const tokenizerSource = sourceOf(block.source ?? 'union', 'tokenizer.source');
  const tokens: TokenOverride[] = [];
  for (const [token, entry] of Object.entries(block.tokens ?? {})) {
    const field = `tokenizer.tokens[${JSON.stringify(token)}].source`;
    const raw = entry.source;
    let source: TokenRowSource | null = null;
    if (raw === undefined || raw === null) {
      issues.push({
        path: field,
        message: 'required: a model, {kind: zero} or {kind: model_token, model, token | token_id}',
      });
    } else if (typeof raw === 'string') {
      const ref = lookup(raw, field);
      if (ref !== null) source = { kind: 'model', model: ref };
    } else if (raw.kind === 'zero') {
      source = { kind: 'zero' };
    } else {
      const ref = lookup(raw.model, `${field}.model`);
      const tokenId = raw.token_id ?? null;
      const name = raw.token ?? null;
      if ((tokenId === null) === (name === null))
        issues.push({ path: field, message: 'give exactly one of token and token_id' });
      else if (ref !== null) source = { kind: 'model_token', model: ref, tokenId, token: name };
    }
    if (source !== null) tokens.push({ token, source, force: entry.force ?? false });
  }
  return {
    tokenizerSource,
    tokenizer: { tokens, padToMultipleOf: block.pad_to_multiple_of ?? null },
  };
}

/**
 * The slices of a frankenmerge: equal layer counts within a slice, a model at most once per slice, the
 * method's arity per slice, and required parameters given for every source that is not the base.
 */
function checkSlices(
  method: MergeMethod,
  rawSlices: readonly RawSlice[],
  recipeBase: ModelRef | null,
  topParameters: Readonly<Record<string, ParamSetting>>,
  issues: RecipeIssue[],
): RecipeSlice[] {
  return rawSlices.map((raw, k) => {
    const path = `slices[${k}]`;
    const base: ModelRef | null =
      raw.base_model === undefined || raw.base_model === null
        ? recipeBase
        : { uri: raw.base_model, modelId: '' };
    const baseKey = base === null ? null : modelKey(base);
    if (method.base === 'required' && base === null)
      issues.push({ path: `${path}.base_model`, message: `required by method ${method.name}` });
    const parameters = checkParameters(method, raw.parameters, `${path}.parameters`, 'top', issues);
    const seen = new Set<string>();
    const lengths: number[] = [];
    const sources = raw.sources.map((s, i): RecipeSliceSource => {
      const ref: ModelRef = { uri: s.model, modelId: '' };
      const key = modelKey(ref);
      if (seen.has(key))
        issues.push({ path: `${path}.sources[${i}].model`, message: `${key} is listed twice in this slice` });
      seen.add(key);
      const [start, end] = s.layer_range;
      if (end <= start)
        issues.push({
          path: `${path}.sources[${i}].layer_range`,
          message: `must be [start, end) with end > start (got [${start}, ${end}])`,
        });
      lengths.push(end - start);
      return {
        ref,
        layerRange: [start, end],
        isBase: baseKey !== null && key === baseKey,
        parameters: checkParameters(
          method,
          s.parameters,
          `${path}.sources[${i}].parameters`,
          'model',
          issues,
        ),
      };
    });
    if (lengths.some((n) => n !== lengths[0]))
      issues.push({
        path: `${path}.sources`,
        message: `every source of a slice must span the same number of layers (got ${lengths.join(', ')})`,
      });
    const merged = method.base !== 'none' ? sources.filter((s) => !s.isBase) : sources;
    const { min, max } = method.models;
    if (merged.length < min || (max !== undefined && merged.length > max)) {
      const wanted =
        max === undefined ? `at least ${min}` : min === max ? `exactly ${min}` : `${min} to ${max}`;
      issues.push({
        path: `${path}.sources`,
        message: `method ${method.name} merges ${wanted} model(s) per slice; got ${merged.length}`,
      });
    }
    if (method.base === 'none' && baseKey !== null && raw.base_model && !sources.some((s) => s.isBase)) {
      issues.push({ path: `${path}.base_model`, message: `method ${method.name} takes no base model` });
    }
    for (const spec of method.params) {
      if (!spec.required) continue;
      if (spec.scope === 'global') {
        if (!(spec.name in topParameters) && !(spec.name in parameters))
          issues.push({
            path: `${path}.parameters.${spec.name}`,
            message: `required by method ${method.name}`,
          });
        continue;
      }
      sources.forEach((s, i) => {
        if (method.base !== 'none' && s.isBase) return;
        if (!(spec.name in s.parameters) && !(spec.name in parameters) && !(spec.name in topParameters))
          issues.push({
            path: `${path}.sources[${i}].parameters.${spec.name}`,
            message: `required by method ${method.name}`,
          });
      });
    }
    return { sources, base, parameters };
  });
}

/** Integers as bigint only where they must be (the seed); numbers everywhere else. */
function numbersFromBigints(value: unknown, key: string | null): unknown {
  if (typeof value === 'bigint') return key === 'seed' ? value : Number(value);
  if (Array.isArray(value)) return value.map((v) => numbersFromBigints(v, null));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, numbersFromBigints(v, k)]));
  }
  return value;
}

/** Parses and validates a mergekit YAML recipe. `source` (the file path) names the recipe in errors. */
export function parseRecipeYaml(text: string, source = 'recipe.yaml'): Recipe {
  const doc = parseDocument(text, { intAsBigInt: true, uniqueKeys: true, prettyErrors: true });
  if (!isDocument(doc) || doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({
      path: '',
      message: `not valid YAML: ${e.message.split('\n')[0]}`,
    }));
    throw new RecipeValidationError(
      source,
      issues.length > 0 ? issues : [{ path: '', message: 'not valid YAML' }],
    );
  }
  const value = numbersFromBigints(doc.toJS(), null);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RecipeValidationError(source, [
      { path: '', message: 'a recipe is a YAML mapping (merge_method, models, ...)' },
    ]);
  }
  return validateRecipeDocument(value, { source });
}

// ---- the proto MergeRecipe -> the same document ----------------------------------------------------------

const PROTO_DTYPES: Readonly<Record<number, string | null>> = {
  [common.DType.UNSPECIFIED]: null,
  [common.DType.F32]: 'float32',
  [common.DType.F16]: 'float16',
  [common.DType.BF16]: 'bfloat16',
  [common.DType.F64]: 'float64',
};

function settingFromProto(value: common.ParamValue | undefined): unknown {
  const v = value?.value;
  switch (v?.$case) {
    case 'scalar':
    case 'flag':
    case 'choice':
      return v.value;
    case 'gradient':
      return v.value.values;
    case 'filtered':
      return v.value.entries.map((e) => ({
        filter: e.filter === '' ? null : e.filter,
        value: e.value?.$case === 'gradient' ? e.value.value.values : e.value?.value,
      }));
    default:
      return undefined;
  }
}

function parametersFromProto(map: Readonly<Record<string, common.ParamValue>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, settingFromProto(v)]));
}

function refString(ref: common.ModelRef | undefined): string | undefined {
  if (ref === undefined) return undefined;
  return ref.uri !== '' ? ref.uri : ref.modelId !== '' ? ref.modelId : undefined;
}

const PROTO_FIELD_NAMES = { merge_method: 'method', base_model: 'base', out_dtype: 'out_dtype' } as const;

/** Maps a wire MergeRecipe to the domain Recipe, validated exactly as a YAML recipe. */
export function recipeFromProto(message: common.MergeRecipe, source = 'MergeRecipe'): Recipe {
  const tokenizer = message.tokenizerSource;
  let tokenizerSource: string | undefined;
  if (tokenizer?.kind === common.TokenizerSourceKind.BASE) tokenizerSource = 'base';
  else if (tokenizer?.kind === common.TokenizerSourceKind.UNION) tokenizerSource = 'union';
  else if (tokenizer?.kind === common.TokenizerSourceKind.MODEL)
    tokenizerSource = refString(tokenizer.model) ?? '';
  const document = {
    merge_method: message.method,
    base_model: refString(message.base),
    base_model_id: message.base?.modelId || undefined,
    models:
      message.slices.length > 0 && message.models.length === 0
        ? undefined
        : message.models.map((m) => ({
            model: refString(m.model) ?? '',
            parameters: parametersFromProto(m.parameters),
          })),
    model_ids: message.models.map((m) => m.model?.modelId ?? ''),
    slices:
      message.slices.length > 0
        ? message.slices.map((s) => ({
            sources: s.sources.map((src) => ({
              model: refString(src.model) ?? '',
              layer_range: [src.layerStart, src.layerEnd],
              parameters: parametersFromProto(src.parameters),
            })),
            parameters: parametersFromProto(s.parameters),
          }))
        : undefined,
    parameters: parametersFromProto(message.parameters),
    dtype:
      PROTO_DTYPES[message.dtype] ??
      (message.dtype === common.DType.UNSPECIFIED ? undefined : `dtype ${message.dtype}`),
    out_dtype:
      PROTO_DTYPES[message.outDtype] ??
      (message.outDtype === common.DType.UNSPECIFIED ? undefined : `dtype ${message.outDtype}`),
    seed: message.seed,
    tokenizer_source: tokenizerSource,
  };
  return validateRecipeDocument(document, { source, fieldNames: PROTO_FIELD_NAMES });
}

/** Every registered method's name (for messages and CLI completion). */
export function methodNames(): string[] {
  return listMethods().map((m) => m.name);
}

export { UnknownMethodError };

// ---- the Recipe -> a mergekit document (model cards, hashes, conformance runs) ----------------------------

const DTYPE_YAML: Readonly<Record<DType, string>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
};

function settingToDocument(setting: ParamSetting): unknown {
  switch (setting.kind) {
    case 'value':
      return setting.value;
    case 'gradient':
      return [...setting.values];
    case 'filtered':
      return setting.entries.map((e) => ({
        ...(e.filter === null ? {} : { filter: e.filter }),
        value: e.value,
      }));
  }
}

function parametersToDocument(
  parameters: Readonly<Record<string, ParamSetting>>,
): Record<string, unknown> | undefined {
  const entries = Object.entries(parameters);
  return entries.length === 0
    ? undefined
    : Object.fromEntries(entries.map(([k, v]) => [k, settingToDocument(v)]));
}

/**
 * The recipe as a mergekit-shaped document (merge_method, base_model, models, parameters, dtype,
 * out_dtype, seed): parseable again by validateRecipeDocument; the seed is a decimal string when it
 * does not fit a double exactly.
 */
export function recipeToDocument(recipe: Recipe): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    merge_method: recipe.method,
    ...(recipe.base === null ? {} : { base_model: recipe.base.uri }),
  };
  if (recipe.slices) {
    doc['slices'] = recipe.slices.map((s) => {
      const parameters = parametersToDocument(s.parameters);
      return {
        sources: s.sources.map((src) => {
          const p = parametersToDocument(src.parameters);
          return {
            model: src.ref.uri,
            layer_range: [...src.layerRange],
            ...(p === undefined ? {} : { parameters: p }),
          };
        }),
        ...(s.base !== null && (recipe.base === null || modelKey(s.base) !== modelKey(recipe.base))
          ? { base_model: s.base.uri }
          : {}),
        ...(parameters === undefined ? {} : { parameters }),
      };
    });
  } else {
    doc['models'] = recipe.models.map((m) => {
      const parameters = parametersToDocument(m.parameters);
      return parameters === undefined ? { model: m.ref.uri } : { model: m.ref.uri, parameters };
    });
  }
  const parameters = parametersToDocument(recipe.parameters);
  if (parameters !== undefined) doc['parameters'] = parameters;
  if (recipe.dtype !== null) doc['dtype'] = DTYPE_YAML[recipe.dtype];
  if (recipe.outDtype !== null) doc['out_dtype'] = DTYPE_YAML[recipe.outDtype];
  doc['seed'] = recipe.seed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(recipe.seed) : recipe.seed.toString();
  const tokenizerSource =
    recipe.tokenizerSource === null
      ? null
      : recipe.tokenizerSource.kind === 'model'
        ? recipe.tokenizerSource.model.uri
        : recipe.tokenizerSource.kind;
  if (recipe.tokenizer) {
    const block: Record<string, unknown> = { source: tokenizerSource ?? 'union' };
    if (recipe.tokenizer.tokens.length > 0) {
      block['tokens'] = Object.fromEntries(
        recipe.tokenizer.tokens.map((t) => [
          t.token,
          {
            source:
              t.source.kind === 'zero'
                ? { kind: 'zero' }
                : t.source.kind === 'model'
                  ? t.source.model.uri
                  : {
                      kind: 'model_token',
                      model: t.source.model.uri,
                      ...(t.source.tokenId === null
                        ? { token: t.source.token }
                        : { token_id: t.source.tokenId }),
                    },
            ...(t.force ? { force: true } : {}),
          },
        ]),
      );
    }
    if (recipe.tokenizer.padToMultipleOf !== null)
      block['pad_to_multiple_of'] = recipe.tokenizer.padToMultipleOf;
    doc['tokenizer'] = block;
  } else if (tokenizerSource !== null) {
    doc['tokenizer_source'] = tokenizerSource;
  }
  if (recipe.chatTemplate !== null) doc['chat_template'] = recipe.chatTemplate;
  return doc;
}
