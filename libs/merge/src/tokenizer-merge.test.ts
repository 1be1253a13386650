// Tokenizer merges end to end: the embedding and head rows of every input in the output vocabulary
// against an f64 reference (a literal port of mergekit's PermutedEmbeddings), properties (identical
// models merge to that model; permuting the models of a symmetric method permutes nothing; row blocks
// change nothing), the files written, and the errors, each naming its field.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { Checkpoint } from '@hm3/tensor';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecipeValidationError } from './errors.js';
import { runMerge } from './executor.js';
import { formatPlanSummary, planMerge } from './plan.js';
import { parseRecipeYaml, recipeToDocument, validateRecipeDocument } from './recipe.js';
import {
  BASE_VOCAB,
  tokenizerJson,
  writeTokenizerModel,
  type FixtureModel,
} from './tokenizer-fixtures.test-helper.js';
import { TokenRowError } from './tokenizer-merge.js';
import { MissingTokenizerError } from './vocabulary.js';

let root: string;
let outCount = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hm3-tokenizer-merge-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const HIDDEN = 8;
const VOCAB_TENSORS = ['model.embed_tokens.weight', 'lm_head.weight'];

/** Token -> id of a fixture (get_vocab) and its config vocab_size. */
function fixtureVocab(m: FixtureModel): { vocab: Map<string, number>; vocabSize: number } {
  const json = tokenizerJson(m) as {
    model: { vocab: Record<string, number> };
    added_tokens: { id: number; content: string }[];
  };
  const vocab = new Map(Object.entries(json.model.vocab));
  for (const t of json.added_tokens) vocab.set(t.content, t.id);
  return { vocab, vocabSize: m.vocabSize ?? vocab.size };
}

async function readTensor(dir: string, name: string): Promise<Float64Array> {
  const ck = await Checkpoint.open(dir);
  try {
    return await ck.readFloats(name, 'F64');
  } finally {
    await ck.close();
  }
}

async function merge(yaml: string, maxMemory?: number): Promise<string> {
  const out = path.join(root, `out-${outCount++}`);
  const recipe = parseRecipeYaml(yaml, 'recipe.yaml');
  await runMerge(recipe, out, { modelRoot: root, ...(maxMemory === undefined ? {} : { maxMemory }) });
  return out;
}

async function outputVocab(out: string): Promise<string[]> {
  const json = JSON.parse(await readFile(path.join(out, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number> };
    added_tokens: { id: number; content: string }[];
  };
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(json.model.vocab)) tokens[id] = t;
  for (const t of json.added_tokens) tokens[t.id] = t.content;
  return tokens;
}

// ---- the f64 reference: mergekit/tokenizer/embed.py, PermutedEmbeddings.execute, on whole matrices ----

type RefSource =
  | { kind: 'zero' }
  | { kind: 'model'; input: number }
  | { kind: 'model_token'; input: number; tokenId?: number; token?: string };

interface RefInput {
  vocab: Map<string, number>;
  vocabSize: number;
  /** rows x HIDDEN, row-major. */
  rows: Float64Array;
}

/** Each input's matrix in the output vocabulary `tokens` (ids = positions), padded to `pad`. */
function referenceRows(
  tokens: readonly string[],
  inputs: readonly RefInput[],
  baseIndex: number | null,
  overrides: ReadonlyMap<string, { source: RefSource; force: boolean }>,
  pad: number | null,
): Float64Array[] {
  const cols = HIDDEN;
  let size = tokens.length;
  if (pad !== null && size % pad !== 0) size = (Math.floor(size / pad) + 1) * pad;
  const p = (i: number, t: string) => {
    const id = inputs[i]!.vocab.get(t);
    return id !== undefined && id < inputs[i]!.vocabSize ? id : -1;
  };
  const row = (i: number, r: number) => inputs[i]!.rows.slice(r * cols, (r + 1) * cols);
  const configs = new Map(overrides);
  const average = new Set<string>();
  for (const t of tokens) {
    if (configs.has(t)) continue;
    const has = inputs.map((_, i) => p(i, t) >= 0);
    const count = has.filter(Boolean).length;
    if (count === 1) configs.set(t, { source: { kind: 'model', input: has.indexOf(true) }, force: false });
    else if (count === 0) configs.set(t, { source: { kind: 'zero' }, force: false });
    else if (baseIndex !== null && p(baseIndex, t) >= 0)
      configs.set(t, { source: { kind: 'model', input: baseIndex }, force: false });
    else average.add(t);
  }
  const defaults = new Map<string, Float64Array>();
  for (const t of tokens) {
    const e = new Float64Array(cols);
    if (average.has(t)) {
      let count = 0;
      inputs.forEach((_, i) => {
        if (p(i, t) < 0) return;
        const r = row(i, p(i, t));
        for (let c = 0; c < cols; c++) e[c] = e[c]! + r[c]!;
        count++;
      });
      for (let c = 0; c < cols; c++) e[c] = e[c]! / count;
    } else {
      const s = configs.get(t)!.source;
      if (s.kind === 'model') e.set(row(s.input, p(s.input, t)));
      else if (s.kind === 'model_token')
        e.set(row(s.input, s.tokenId ?? inputs[s.input]!.vocab.get(s.token!)!));
    }
    defaults.set(t, e);
  }
  return inputs.map((_, i) => {
    const out = new Float64Array(size * cols);
    tokens.forEach((t, id) => {
      const force = overrides.get(t)?.force ?? false;
      out.set(p(i, t) >= 0 && !force ? row(i, p(i, t)) : defaults.get(t)!, id * cols);
    });
    if (size > tokens.length) {
      const mean = new Float64Array(cols);
      for (let r = 0; r < tokens.length; r++)
        for (let c = 0; c < cols; c++) mean[c] = mean[c]! + out[r * cols + c]! / tokens.length;
      for (let r = tokens.length; r < size; r++) out.set(mean, r * cols);
    }
    return out;
  });
}

function maxDiff(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// ---- fixtures: the union of every kind of overlap -----------------------------------------------------

const MODELS: Record<string, FixtureModel> = {
  base: { seed: 11, added: [{ content: '<t>', special: true }] },
  x: { seed: 12, extraVocab: ['h'], added: [{ content: '<t>', special: true }, '<x>', '<s>'] },
  y: { seed: 13, added: ['<s>', '<y>', '<unused>'], vocabSize: 12 },
  z: { seed: 14, extraVocab: ['h'], added: ['<z>'] },
};

beforeAll(async () => {
  for (const [name, m] of Object.entries(MODELS)) await writeTokenizerModel(root, name, m);
  // identical copies (same tensors and tokenizer) and variants
  await writeTokenizerModel(root, 'x_copy', MODELS['x']!);
  await writeTokenizerModel(root, 'x_copy2', MODELS['x']!);
  await writeTokenizerModel(root, 'notok', { seed: 15, noTokenizer: true });
  await writeTokenizerModel(root, 'tied_base', { ...MODELS['base']!, tied: true });
  await writeTokenizerModel(root, 'tied_x', { ...MODELS['x']!, tied: true });
});

async function refInputs(names: readonly string[], tensor: string): Promise<RefInput[]> {
  return Promise.all(
    names.map(async (n) => {
      const m = MODELS[n]!;
      const { vocab, vocabSize } = fixtureVocab(m);
      return { vocab, vocabSize, rows: await readTensor(path.join(root, n), tensor) };
    }),
  );
}

describe('rows in the output vocabulary: the f64 reference', () => {
  const cases: {
    name: string;
    yaml: string;
    inputs: string[];
    base: number | null;
    combine: (x: Float64Array[]) => Float64Array;
    overrides?: Map<string, { source: RefSource; force: boolean }>;
    pad?: number;
  }[] = [
    {
      name: 'union, linear with the base among the models',
      yaml: `merge_method: linear
base_model: base
models:
  - {model: base, parameters: {weight: 0.5}}
  - {model: x, parameters: {weight: 0.3}}
  - {model: y, parameters: {weight: 0.15}}
  - {model: z, parameters: {weight: 0.05}}
tokenizer_source: union
dtype: float64`,
      inputs: ['base', 'x', 'y', 'z'],
      base: 0,
      combine: (x) =>
        x[0]!.map((_, k) => 0.5 * x[0]![k]! + 0.3 * x[1]![k]! + 0.15 * x[2]![k]! + 0.05 * x[3]![k]!),
    },
    {
      name: 'union without a base: tokens in several models take their mean',
      yaml: `merge_method: linear
models:
  - {model: x, parameters: {weight: 1.0}}
  - {model: y, parameters: {weight: 1.0}}
  - {model: z, parameters: {weight: 2.0}}
tokenizer_source: union
dtype: float64`,
      inputs: ['x', 'y', 'z'],
      base: null,
      combine: (x) => x[0]!.map((_, k) => (x[0]![k]! + x[1]![k]! + 2 * x[2]![k]!) / 4),
    },
    {
      name: 'base, task_arithmetic',
      yaml: `merge_method: task_arithmetic
base_model: base
models:
  - {model: x, parameters: {weight: 0.7}}
  - {model: y, parameters: {weight: 0.4}}
tokenizer_source: base
dtype: float64`,
      inputs: ['base', 'x', 'y'],
      base: 0,
      combine: (x) => x[0]!.map((b, k) => b + 0.7 * (x[1]![k]! - b) + 0.4 * (x[2]![k]! - b)),
    },
    {
      name: '<model> (y, whose last token has no row anywhere: zero)',
      yaml: `merge_method: task_arithmetic
base_model: base
models:
  - {model: x, parameters: {weight: 0.5}}
  - {model: y, parameters: {weight: 0.5}}
tokenizer_source: y
dtype: float64`,
      inputs: ['base', 'x', 'y'],
      base: 0,
      combine: (x) => x[0]!.map((b, k) => b + 0.5 * (x[1]![k]! - b) + 0.5 * (x[2]![k]! - b)),
    },
    {
      name: 'the tokenizer: block: overrides, force, zero, pad_to_multiple_of',
      yaml: `merge_method: linear
base_model: base
models:
  - {model: base, parameters: {weight: 0.6}}
  - {model: x, parameters: {weight: 0.4}}
tokenizer:
  source: union
  tokens:
    <new>:
      source: {kind: model_token, model: x, token: <x>}
    <t>:
      source: x
      force: true
    c:
      source: {kind: model_token, model: base, token_id: 4}
      force: true
    <nothing>:
      source: {kind: zero}
  pad_to_multiple_of: 6
dtype: float64`,
      inputs: ['base', 'x'],
      base: 0,
      combine: (x) => x[0]!.map((_, k) => 0.6 * x[0]![k]! + 0.4 * x[1]![k]!),
      overrides: new Map<string, { source: RefSource; force: boolean }>([
        ['<new>', { source: { kind: 'model_token', input: 1, token: '<x>' }, force: false }],
        ['<t>', { source: { kind: 'model', input: 1 }, force: true }],
        ['c', { source: { kind: 'model_token', input: 0, tokenId: 4 }, force: true }],
        ['<nothing>', { source: { kind: 'zero' }, force: false }],
      ]),
      pad: 6,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const out = await merge(c.yaml);
      const tokens = await outputVocab(out);
      const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as {
        vocab_size: number;
      };
      for (const tensor of VOCAB_TENSORS) {
        const rebuilt = referenceRows(
          tokens,
          await refInputs(c.inputs, tensor),
          c.base,
          c.overrides ?? new Map(),
          c.pad ?? null,
        );
        const expected = c.combine(rebuilt);
        const got = await readTensor(out, tensor);
        expect(got.length / HIDDEN).toBe(config.vocab_size);
        expect(maxDiff(got, expected)).toBeLessThan(1e-12);
      }
    });
  }

  it('the union holds every token with a row somewhere, in recipe order', async () => {
    const out = await merge(cases[0]!.yaml);
    expect(await outputVocab(out)).toEqual([...BASE_VOCAB, '<t>', 'h', '<x>', '<s>', '<y>', '<z>']);
  });

  it('a token no model has rows for is named in a warning', async () => {
    const plan = await planMerge(parseRecipeYaml(cases[3]!.yaml), { modelRoot: root });
    expect(plan.warnings).toContain(
      `model.embed_tokens.weight: 1 token(s) of the vocabulary are in none of this tensor's models and get a zero row: "<unused>"`,
    );
  });

  it('a zero override and a token in no model give zero rows; padding rows are each input’s mean', async () => {
    const out = await merge(cases[4]!.yaml);
    const tokens = await outputVocab(out);
    const embed = await readTensor(out, 'model.embed_tokens.weight');
    const zero = tokens.indexOf('<nothing>');
    expect([...embed.subarray(zero * HIDDEN, (zero + 1) * HIDDEN)].every((v) => v === 0)).toBe(true);
    expect(embed.length / HIDDEN).toBe(18); // 16 tokens padded to 18
    expect(tokens).toHaveLength(16);
  });
});

describe('tied embeddings', () => {
  it('a tied model has no lm_head; its embedding rows are rebuilt once', async () => {
    const out = await merge(`merge_method: linear
base_model: tied_base
models:
  - {model: tied_base, parameters: {weight: 0.5}}
  - {model: tied_x, parameters: {weight: 0.5}}
tokenizer_source: union
dtype: float64`);
    const ck = await Checkpoint.open(out);
    const names = ck.tensors().map((t) => t.name);
    await ck.close();
    expect(names).not.toContain('lm_head.weight');
    const tokens = await outputVocab(out);
    const embed = await readTensor(out, 'model.embed_tokens.weight');
    const [b, x] = await Promise.all(
      ['tied_base', 'tied_x'].map((n) => readTensor(path.join(root, n), 'model.embed_tokens.weight')),
    );
    const rebuilt = referenceRows(
      tokens,
      [
        { ...fixtureVocab(MODELS['base']!), rows: b! },
        { ...fixtureVocab(MODELS['x']!), rows: x! },
      ],
      0,
      new Map(),
      null,
    );
    expect(
      maxDiff(
        embed,
        rebuilt[0]!.map((v, k) => 0.5 * v + 0.5 * rebuilt[1]![k]!),
      ),
    ).toBeLessThan(1e-12);
  });
});

describe('properties', () => {
  it('N copies of one model merge to that model (any source, linear / task_arithmetic / ties)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('union', 'base', 'x_copy2'),
        fc.constantFrom('linear', 'task_arithmetic', 'ties'),
        fc.double({ min: 0.1, max: 2, noNaN: true }),
        async (source, method, w) => {
          const params = method === 'ties' ? `{weight: ${w}, density: 1.0}` : `{weight: ${w}}`;
          const yaml =
            method === 'linear'
              ? `merge_method: linear
models:
  - {model: x, parameters: ${params}}
  - {model: x_copy, parameters: ${params}}
  - {model: x_copy2, parameters: ${params}}
tokenizer_source: ${source}
dtype: float64`
              : `merge_method: ${method}
base_model: x
models:
  - {model: x_copy, parameters: ${params}}
  - {model: x_copy2, parameters: ${params}}
tokenizer_source: ${source}
dtype: float64`;
          const out = await merge(yaml);
          expect(await outputVocab(out)).toEqual(await outputVocab(path.join(root, 'x')));
          for (const tensor of VOCAB_TENSORS) {
            const got = await readTensor(out, tensor);
            const want = await readTensor(path.join(root, 'x'), tensor);
            expect(maxDiff(got, want)).toBeLessThan(1e-12);
          }
        },
      ),
      { numRuns: 6, seed: 7 },
    );
  });

  it('permuting the models of linear permutes nothing: the same row for every token', async () => {
    const names = ['x', 'y', 'z'];
    const weights: Record<string, number> = { x: 0.2, y: 0.5, z: 0.3 };
    const yamlFor = (order: readonly string[]) => `merge_method: linear
models:
${order.map((n) => `  - {model: ${n}, parameters: {weight: ${weights[n]}}}`).join('\n')}
tokenizer_source: union
dtype: float64`;
    const rowsByToken = async (out: string, tensor: string) => {
      const tokens = await outputVocab(out);
      const t = await readTensor(out, tensor);
      return new Map(tokens.map((tok, id) => [tok, t.slice(id * HIDDEN, (id + 1) * HIDDEN)]));
    };
    const first = await merge(yamlFor(names));
    const reference = await rowsByToken(first, 'model.embed_tokens.weight');
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray(names, { minLength: 3, maxLength: 3 }).filter((o) => o[0] !== 'x'),
        async (order) => {
          const other = await rowsByToken(await merge(yamlFor(order)), 'model.embed_tokens.weight');
          expect([...other.keys()].sort()).toEqual([...reference.keys()].sort());
          for (const [tok, row] of reference) expect(maxDiff(other.get(tok)!, row)).toBeLessThan(1e-12);
        },
      ),
      { numRuns: 3, seed: 11 },
    );
  });

  it('row blocks under a small memory bound give the same bytes as the whole tensor (padding included)', async () => {
    const yaml = `merge_method: linear
base_model: base
models:
  - {model: base, parameters: {weight: 0.5}}
  - {model: x, parameters: {weight: 0.25}}
  - {model: z, parameters: {weight: 0.25}}
tokenizer:
  source: union
  pad_to_multiple_of: 16`;
    const whole = await merge(yaml);
    const plan = await planMerge(parseRecipeYaml(yaml), { modelRoot: root, maxMemory: 2000 });
    const embed = plan.tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
    expect(embed.rowsPerBlock).toBeLessThan(embed.rows);
    const blocked = await merge(yaml, 2000);
    for (const tensor of VOCAB_TENSORS) {
      expect(maxDiff(await readTensor(blocked, tensor), await readTensor(whole, tensor))).toBe(0);
    }
  });
});

describe('files and the plan', () => {
  it('config.json vocab_size and the tokenizer files follow the rebuilt vocabulary', async () => {
    const out = await merge(`merge_method: linear
base_model: base
models:
  - {model: base, parameters: {weight: 0.5}}
  - {model: x, parameters: {weight: 0.5}}
tokenizer_source: union`);
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as {
      vocab_size: number;
    };
    expect(config.vocab_size).toBe(14);
    const tc = JSON.parse(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8')) as {
      added_tokens_decoder: Record<string, { content: string; special: boolean; normalized: boolean }>;
    };
    expect(tc.added_tokens_decoder['11']).toMatchObject({ content: 'h', special: false, normalized: true });
    expect(tc.added_tokens_decoder['12']).toMatchObject({ content: '<x>' });
    expect(JSON.parse(await readFile(path.join(out, 'generation_config.json'), 'utf8'))).toEqual({
      bos_token_id: 1,
    });
  });

  it('an unchanged source tokenizer is copied byte for byte', async () => {
    const out = await merge(`merge_method: linear
models:
  - {model: x, parameters: {weight: 0.5}}
  - {model: z, parameters: {weight: 0.5}}
tokenizer_source: z`);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
      expect(await readFile(path.join(out, f), 'utf8')).toBe(await readFile(path.join(root, 'z', f), 'utf8'));
  });

  it('--validate shows the vocabulary and its size', async () => {
    const plan = await planMerge(
      parseRecipeYaml(`merge_method: linear
base_model: base
models:
  - {model: base, parameters: {weight: 0.5}}
  - {model: x, parameters: {weight: 0.5}}
tokenizer:
  pad_to_multiple_of: 8`),
      { modelRoot: root },
    );
    expect(plan.vocabSize).toBe(16);
    expect(formatPlanSummary(plan)).toContain(
      'vocabulary    14 tokens (union of 2 tokenizers; 3 not in base), 16 rows (padded to a multiple of 8); vocab_size 16',
    );
  });

  it('the tokenizer: block round-trips through the canonical document', () => {
    const recipe = parseRecipeYaml(`merge_method: linear
models:
  - {model: x, parameters: {weight: 1}}
  - {model: y, parameters: {weight: 1}}
tokenizer:
  source: y
  tokens:
    <a>: {source: {kind: model_token, model: x, token_id: 3}, force: true}
    <b>: {source: {kind: zero}}
    <c>: {source: x}
  pad_to_multiple_of: 4`);
    const again = validateRecipeDocument(recipeToDocument(recipe));
    expect(again.tokenizerSource).toEqual(recipe.tokenizerSource);
    expect(again.tokenizer).toEqual(recipe.tokenizer);
  });
});

describe('errors name the field', () => {
  const refusal = (yaml: string) =>
    planMerge(parseRecipeYaml(yaml), { modelRoot: root }).catch((e: unknown) => e);

  it('an unknown model in tokenizer_source or the tokenizer: block', () => {
    expect(() =>
      parseRecipeYaml(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer_source: yy`),
    ).toThrow(/tokenizer_source: unknown model "yy"; did you mean "y"\?/);
    expect(() =>
      parseRecipeYaml(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer:
  tokens:
    <a>: {source: {kind: model_token, model: w, token: a}}`),
    ).toThrow(/tokenizer\.tokens\["<a>"\]\.source\.model: unknown model "w"/);
    expect(() =>
      parseRecipeYaml(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer_source: union
tokenizer: {source: base}`),
    ).toThrow(RecipeValidationError);
    expect(() =>
      parseRecipeYaml(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer:
  tokens:
    <a>: {source: {kind: model_token, model: x, token: a, token_id: 3}}
    <b>: {force: true}`),
    ).toThrow(
      /tokenizer\.tokens\["<a>"\]\.source: give exactly one of token and token_id; tokenizer\.tokens\["<b>"\]\.source: required/,
    );
  });

  it('a model without tokenizer files', async () => {
    const error = await refusal(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: notok, parameters: {weight: 1}}]
tokenizer_source: union`);
    expect(error).toBeInstanceOf(MissingTokenizerError);
    expect(error).toBeInstanceOf(FailedPreconditionError);
    expect((error as Error).message).toMatch(
      /^models\[1\]\.model: .*notok: the model has no tokenizer files/,
    );
    // without tokenizer_source nothing needs it
    await expect(
      planMerge(
        parseRecipeYaml(
          'merge_method: linear\nmodels: [{model: x, parameters: {weight: 1}}, {model: notok, parameters: {weight: 1}}]',
        ),
        { modelRoot: root },
      ),
    ).resolves.toBeTruthy();
  });

  it('an override naming a token absent from its model, or a row out of range', async () => {
    const absent = await refusal(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer:
  tokens:
    <q>: {source: {kind: model_token, model: x, token: <nowhere>}}`);
    expect(absent).toBeInstanceOf(TokenRowError);
    expect(absent).toBeInstanceOf(InvalidArgumentError);
    expect((absent as Error).message).toMatch(
      /^tokenizer\.tokens\["<q>"\]\.source\.token: token "<nowhere>" is not in the vocabulary of x/,
    );
    const notInModel = await refusal(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer:
  tokens:
    <q>: {source: y}`);
    expect((notInModel as Error).message).toMatch(
      /^tokenizer\.tokens\["<q>"\]\.source: token "<q>" is not in the vocabulary of y/,
    );
    const range = await refusal(`merge_method: linear
models: [{model: x, parameters: {weight: 1}}, {model: y, parameters: {weight: 1}}]
tokenizer:
  tokens:
    <q>: {source: {kind: model_token, model: y, token_id: 99}}`);
    expect((range as Error).message).toMatch(
      /^tokenizer\.tokens\["<q>"\]\.source\.token_id: token id 99 is out of range for y \(12 rows\)/,
    );
  });
});
