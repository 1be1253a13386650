// End-to-end merges of small random Llama-shaped checkpoints (f32, bf16, sharded, a larger vocabulary)
// for every registered method, each output tensor checked against the method applied directly.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { Checkpoint, CheckpointWriter, floatToBf16, type DType, type FloatArray } from '@hm3/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  architectureFromConfig,
  expectedTensors,
  isVocabularyTensor,
  classifyTensor,
} from './architecture.js';
import { UnknownMethodError } from './errors.js';
import { executeMerge, MergeCancelledError, runMerge } from './executor.js';
import { gaussian, rng } from './methods/method-harness.test-helper.js';
import { formatPlanSummary, planMerge } from './plan.js';
import { parseRecipeYaml, type Recipe } from './recipe.js';
import { getMethod, listMethods } from './registry.js';
import { gradientT, resolveTensorParameters } from './tensor-parameters.js';
import {
  MemoryBudgetError,
  MissingTensorError,
  ModelNotFoundError,
  TensorDTypeError,
  TensorShapeMismatchError,
} from './validate.js';

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 16,
  intermediate_size: 24,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 40,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};

let root: string;

interface ModelOptions {
  dtype?: DType;
  config?: Record<string, unknown>;
  shardBytes?: number;
  drop?: string;
  reshape?: string;
}

/** A tiny random Llama checkpoint, with tokenizer and generation config files. */
async function writeModel(name: string, seed: number, o: ModelOptions = {}): Promise<string> {
  const dir = path.join(root, name);
  const config = { ...CONFIG, ...o.config };
  const random = rng(seed);
  const specs = expectedTensors(architectureFromConfig(config))
    .filter((t) => t.name !== o.drop)
    .map((t) => ({
      name: t.name,
      dtype: o.dtype ?? ('F32' as DType),
      shape: t.name === o.reshape ? [t.shape[0]! + 1, ...t.shape.slice(1)] : t.shape,
    }));
  const writer = await CheckpointWriter.create(
    dir,
    specs,
    o.shardBytes === undefined ? {} : { shardBytes: o.shardBytes },
  );
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    await writer.writeFloats(s.name, Float32Array.from(gaussian(n, random, 0.5)));
  }
  await writer.writeFile('config.json', JSON.stringify(config));
  await writer.writeFile('tokenizer.json', JSON.stringify({ model: name }));
  await writer.writeFile('generation_config.json', JSON.stringify({ bos_token_id: 1, from: name }));
  await writer.commit();
  return dir;
}

/** Names in root that are the output or a temporary folder: what a failure must not leave. */
async function leftovers(out: string): Promise<string[]> {
  return (await readdir(path.dirname(out))).filter(
    (f) => f === path.basename(out) || f.startsWith('.hm3-tmp'),
  );
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hm3-executor-'));
  await writeModel('base', 1);
  await writeModel('a', 2, { dtype: 'BF16' });
  await writeModel('b', 3, { shardBytes: 4000 }); // sharded
  await writeModel('c', 4, { config: { vocab_size: 44 } }); // cropped to 40
  await writeModel('missing', 5, { drop: 'model.layers.1.mlp.up_proj.weight' });
  await writeModel('reshaped', 6, { reshape: 'model.layers.1.self_attn.q_proj.weight' });
  await writeModel('tied', 7, { config: { tie_word_embeddings: true } });
  // an integer tensor where the base has floats
  const intDir = path.join(root, 'int');
  const specs = expectedTensors(architectureFromConfig(CONFIG)).map((t) => ({
    name: t.name,
    dtype: (t.name === 'model.norm.weight' ? 'I32' : 'F32') as DType,
    shape: t.shape,
  }));
  const writer = await CheckpointWriter.create(intDir, specs);
  for (const sp of specs) {
    const n = sp.shape.reduce((x, y) => x * y, 1);
    if (sp.dtype === 'I32') await writer.write(sp.name, new Uint8Array(n * 4));
    else await writer.writeFloats(sp.name, new Float32Array(n));
  }
  await writer.writeFile('config.json', JSON.stringify(CONFIG));
  await writer.commit();
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A recipe per method: gradients and filters in the parameters, the base's files as the reference. */
function recipeFor(method: string): string {
  if (method === 'slerp') {
    return `merge_method: slerp
base_model: base
models:
  - model: base
  - model: c
parameters:
  t:
    - filter: self_attn
      value: [0.1, 0.9]
    - value: 0.4
`;
  }
  if (method === 'linear') {
    return `merge_method: linear
models:
  - model: base
    parameters: {weight: 0.5}
  - model: a
    parameters: {weight: [1, 0.2]}
  - model: b
    parameters:
      weight:
        - filter: mlp
          value: 0.3
        - value: 0.7
  - model: c
    parameters: {weight: 0.25}
`;
  }
  const density = method.startsWith('breadcrumbs') ? 0.8 : 0.6;
  const gamma = method.startsWith('breadcrumbs') ? ', gamma: 0.05' : '';
  const dens = method === 'task_arithmetic' ? '' : `, density: ${density}${gamma}`;
  return `merge_method: ${method}
base_model: base
models:
  - model: a
    parameters: {weight: [1, 0.5]${dens}}
  - model: b
    parameters:
      weight:
        - filter: mlp
          value: 0.4
        - value: 0.9${dens === '' ? '' : `\n      density: ${density}`}
  - model: c
    parameters: {weight: 0.3${dens}}
seed: 42
`;
}

/** The method applied directly to the source tensors (read here, not by the executor). */
async function expected(recipe: Recipe, name: string): Promise<FloatArray> {
  const method = getMethod(recipe.method);
  const open = async (uri: string) => Checkpoint.open(path.join(root, uri));
  const vocab = isVocabularyTensor(name);
  const read = async (uri: string) => {
    const ck = await open(uri);
    try {
      return await ck.readFloats(name, 'F32', vocab ? { rows: [0, 40] } : {});
    } finally {
      await ck.close();
    }
  };
  const role = classifyTensor(name);
  const resolved = resolveTensorParameters(recipe, method, name, gradientT(role.layerIndex, 2));
  const models = [];
  for (const m of resolved.models) models.push({ id: m.id, tensor: await read(m.ref.uri), params: m.params });
  return method.merge({
    base: method.base === 'required' ? await read(recipe.base!.uri) : null,
    models,
    params: resolved.params,
    context: { name, layerIndex: role.layerIndex, seed: recipe.seed },
  });
}

describe('executeMerge: every registered method, end to end', () => {
  it.each(listMethods().map((m) => m.name))(
    '%s: a complete HF folder, each tensor = the method applied directly',
    async (name) => {
      const recipe = parseRecipeYaml(recipeFor(name), `${name}.yaml`);
      const out = path.join(root, `out-${name}`);
      const warnings: string[] = [];
      const result = await runMerge(recipe, out, { modelRoot: root, onWarning: (w) => warnings.push(w) });
      expect(warnings.join('\n')).toContain('cropped to the common 40 rows');
      const files = await readdir(out);
      for (const f of [
        'model.safetensors',
        'config.json',
        'tokenizer.json',
        'generation_config.json',
        'README.md',
      ]) {
        expect(files).toContain(f);
      }
      const reference = recipe.base?.uri ?? recipe.models[0]!.ref.uri;
      expect(JSON.parse(await readFile(path.join(out, 'tokenizer.json'), 'utf8'))).toEqual({
        model: reference,
      });
      const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(config).toMatchObject({
        num_hidden_layers: 2,
        vocab_size: 40,
        torch_dtype: 'float32',
        model_type: 'llama',
      });
      const card = await readFile(path.join(out, 'README.md'), 'utf8');
      expect(card).toMatch(/^---\n/);
      expect(card).toContain(
        recipe.base === null ? 'base_model:\n  - base\n  - a\n  - b\n  - c\n' : `base_model: ${reference}\n`,
      );
      expect(card).toContain('tags:\n  - merge\n  - hm3');
      expect(card).toContain(`merge_method: ${name}`);

      const ck = await Checkpoint.open(out);
      try {
        expect(ck.metadata['hm3_recipe_sha256']).toBe(result.recipeSha256);
        const names = expectedTensors(architectureFromConfig(CONFIG)).map((t) => t.name);
        expect(ck.names().sort()).toEqual([...names].sort());
        for (const tensor of names) {
          const ref = await expected(recipe, tensor);
          const got = await ck.readFloats(tensor, 'F32');
          expect(ck.info(tensor).dtype).toBe('F32');
          expect(got.length).toBe(ref.length);
          let err = 0;
          let scale = 0;
          for (let i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(got[i]! - ref[i]!));
            scale = Math.max(scale, Math.abs(ref[i]!));
          }
          expect(err, tensor).toBeLessThanOrEqual(1e-6 * scale);
        }
        expect(ck.info('model.embed_tokens.weight').shape).toEqual([40, 16]);
      } finally {
        await ck.close();
      }
    },
  );

  it('bf16 output is within 1 ulp of round-to-nearest-even of the direct result', async () => {
    const recipe = parseRecipeYaml(recipeFor('ties') + 'out_dtype: bfloat16\n');
    const out = path.join(root, 'out-ties-bf16');
    await runMerge(recipe, out, { modelRoot: root });
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config['torch_dtype']).toBe('bfloat16');
    const ck = await Checkpoint.open(out);
    try {
      let same = 0;
      let total = 0;
      for (const tensor of ck.names()) {
        expect(ck.info(tensor).dtype).toBe('BF16');
        const refBits = floatToBf16(
          await expected(recipe, tensor),
          new Uint16Array(ck.info(tensor).byteLength / 2),
        );
        const raw = await ck.readBytes(tensor);
        const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
        for (let i = 0; i < bits.length; i++) {
          const ulps = Math.abs(((bits[i]! << 16) >> 16) - ((refBits[i]! << 16) >> 16));
          expect(ulps).toBeLessThanOrEqual(1);
          if (ulps === 0) same++;
          total++;
        }
      }
      expect(same / total).toBeGreaterThanOrEqual(0.999);
    } finally {
      await ck.close();
    }
  });
});

describe('sources and compute dtype', () => {
  it('reads lm_head.weight of a model with tied embeddings from its embed_tokens.weight', async () => {
    const recipe = parseRecipeYaml('merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: tied\n    parameters: {weight: 3}\n');
    const plan = await planMerge(recipe, { modelRoot: root });
    const head = plan.tensors.find((t) => t.name === 'lm_head.weight')!;
    expect(head.models.map((m) => m.source.tensor)).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
    const out = path.join(root, 'out-tied');
    await executeMerge(plan, out);
    const [ck, b, t] = await Promise.all([out, path.join(root, 'base'), path.join(root, 'tied')].map((d) => Checkpoint.open(d)));
    try {
      const got = await ck!.readFloats('lm_head.weight', 'F64');
      const x = await b!.readFloats('lm_head.weight', 'F64');
      const y = await t!.readFloats('model.embed_tokens.weight', 'F64');
      got.forEach((v, i) => expect(Math.abs(v - Math.fround((x[i]! + 3 * y[i]!) / 4))).toBeLessThanOrEqual(1e-6));
    } finally {
      await Promise.all([ck, b, t].map((c) => c!.close()));
    }
  });

  it('computes in f64 when dtype is float64, rounding once to the out dtype', async () => {
    const recipe = parseRecipeYaml(recipeFor('task_arithmetic') + 'dtype: float64\nout_dtype: float32\n');
    const plan = await planMerge(recipe, { modelRoot: root });
    expect(plan.computeDtype).toBe('F64');
    const out = path.join(root, 'out-f64');
    await executeMerge(plan, out, { threads: 2, poolMinElements: 64 });
    const ck = await Checkpoint.open(out);
    try {
      const name = 'model.layers.1.mlp.down_proj.weight';
      const method = getMethod('task_arithmetic');
      const read = async (uri: string) => {
        const c = await Checkpoint.open(path.join(root, uri));
        try {
          return await c.readFloats(name, 'F64');
        } finally {
          await c.close();
        }
      };
      const resolved = resolveTensorParameters(recipe, method, name, 1);
      const models = [];
      for (const m of resolved.models) models.push({ id: m.id, tensor: await read(m.ref.uri), params: m.params });
      const ref = method.merge({ base: await read('base'), models, params: resolved.params, context: { name, layerIndex: 1, seed: 42n } });
      expect(ck.info(name).dtype).toBe('F32');
      expect(Array.from(await ck.readFloats(name, 'F32'))).toEqual(Array.from(Float32Array.from(ref)));
    } finally {
      await ck.close();
    }
  });
});

describe('bounded memory', () => {
  it('row blocks under a small --max-memory give the same bytes as an unbounded merge, on 1 or 2 threads', async () => {
    const recipe = parseRecipeYaml(recipeFor('task_arithmetic') + 'out_dtype: bfloat16\n');
    const unbounded = await planMerge(recipe, { modelRoot: root });
    expect(unbounded.tensors.every((t) => t.rowsPerBlock >= t.rows)).toBe(true);
    const maxMemory = 2500;
    const bounded = await planMerge(recipe, { modelRoot: root, maxMemory });
    expect(bounded.peakMemoryBytes).toBeLessThanOrEqual(maxMemory);
    expect(bounded.tensors.filter((t) => t.rowsPerBlock < t.rows).length).toBeGreaterThan(5);
    expect(formatPlanSummary(bounded)).toMatch(/in row blocks/);

    const a = path.join(root, 'out-unbounded');
    const b = path.join(root, 'out-bounded');
    const c = path.join(root, 'out-bounded-threads');
    await executeMerge(unbounded, a, {});
    await executeMerge(bounded, b, {});
    await executeMerge(bounded, c, { threads: 2, poolMinElements: 16 });
    const bytes = async (dir: string) => readFile(path.join(dir, 'model.safetensors'));
    const ref = await bytes(a);
    expect((await bytes(b)).equals(ref)).toBe(true);
    expect((await bytes(c)).equals(ref)).toBe(true);
  }, 60_000);

  it('refuses a bound that a whole-tensor method cannot meet, before writing anything', async () => {
    const recipe = parseRecipeYaml(recipeFor('ties'));
    await expect(planMerge(recipe, { modelRoot: root, maxMemory: 2500 })).rejects.toThrow(MemoryBudgetError);
    await expect(planMerge(recipe, { modelRoot: root, maxMemory: 2500 })).rejects.toBeInstanceOf(
      FailedPreconditionError,
    );
    await expect(planMerge(recipe, { modelRoot: root, maxMemory: 2500 })).rejects.toThrow(
      /max_memory: tensor model\.\S+ needs .* raise --max-memory/,
    );
  });
});

describe('bad input: typed errors naming the folder / tensor / field, and no output folder', () => {
  const cases: [string, string, new (...args: never[]) => Error, RegExp][] = [
    [
      'a tensor shape differing from the base',
      'merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: reshaped\n    parameters: {weight: 1}\n',
      TensorShapeMismatchError,
      /models\[0\]\.model: .*reshaped: tensor model\.layers\.1\.self_attn\.q_proj\.weight has shape \[17, 16\], the base .*\[16, 16\]/,
    ],
    [
      'a missing tensor',
      'merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: missing\n    parameters: {weight: 1}\n',
      MissingTensorError,
      /models\[1\]\.model: .*missing: tensor model\.layers\.1\.mlp\.up_proj\.weight is missing/,
    ],
    [
      'an integer tensor where the base has floats',
      'merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: int\n    parameters: {weight: 1}\n',
      TensorDTypeError,
      /models\[0\]\.model: .*int: tensor model\.norm\.weight: dtype I32 is not a float dtype/,
    ],
    [
      'a missing model folder',
      'merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: nowhere\n    parameters: {weight: 1}\n',
      ModelNotFoundError,
      /models\[0\]\.model: .*nowhere: no such model folder/,
    ],
  ];

  it.each(cases)('%s', async (_what, yaml, type, message) => {
    const out = path.join(root, `out-bad-${Math.random().toString(36).slice(2)}`);
    const recipe = parseRecipeYaml(yaml);
    const error = await runMerge(recipe, out, { modelRoot: root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect(error instanceof InvalidArgumentError || error instanceof NotFoundError).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect(existsSync(out)).toBe(false);
    expect(await leftovers(out)).toEqual([]);
  });

  it('an unknown method', () => {
    const yaml = 'merge_method: tiess\nbase_model: base\nmodels:\n  - model: a\n';
    expect(() => parseRecipeYaml(yaml, 'r.yaml')).toThrow(UnknownMethodError);
    expect(() => parseRecipeYaml(yaml, 'r.yaml')).toThrow(
      /r\.yaml: .*merge_method: unknown merge method "tiess"; did you mean "ties"/,
    );
  });

  it('a cancelled merge leaves nothing under the output name', async () => {
    const out = path.join(root, 'out-cancelled');
    const controller = new AbortController();
    const plan = await planMerge(parseRecipeYaml(recipeFor('linear')), { modelRoot: root });
    let calls = 0;
    const error = await executeMerge(plan, out, {
      signal: controller.signal,
      onProgress: () => {
        if (++calls === 5) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MergeCancelledError);
    expect(calls).toBeGreaterThanOrEqual(5);
    expect(await leftovers(out)).toEqual([]);
  });
});

describe('progress', () => {
  it('reports tensors and bytes up to the totals, with throughput and ETA', async () => {
    const plan = await planMerge(parseRecipeYaml(recipeFor('dare_ties')), { modelRoot: root });
    const events: { tensorsDone: number; bytesDone: number; etaSeconds: number | null }[] = [];
    await executeMerge(plan, path.join(root, 'out-progress'), { onProgress: (p) => events.push(p) });
    const last = events.at(-1)!;
    expect(last).toMatchObject({
      tensorsDone: plan.tensors.length,
      bytesDone: plan.inputBytes,
      etaSeconds: 0,
    });
    for (let i = 1; i < events.length; i++)
      expect(events[i]!.bytesDone).toBeGreaterThanOrEqual(events[i - 1]!.bytesDone);
  });
});
