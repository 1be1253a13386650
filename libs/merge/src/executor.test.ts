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
import { emrTaskName, materializeEmrTask, type EmrTaskManifest } from './emr-output.js';
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
const OTHER_RECIPES: Readonly<Record<string, string>> = {
  nuslerp: `merge_method: nuslerp
base_model: base
models:
  - model: a
    parameters: {weight: [0.3, 0.6]}
  - model: c
    parameters: {weight: 0.7}
parameters:
  nuslerp_flatten: false
`,
  multislerp: `merge_method: multislerp
base_model: base
models:
  - model: a
    parameters: {weight: 0.5}
  - model: b
    parameters: {weight: [0.2, 0.9]}
  - model: c
    parameters: {weight: 0.3}
`,
  karcher: `merge_method: karcher
models:
  - model: base
  - model: a
  - model: b
  - model: c
parameters: {max_iter: 20}
`,
  model_stock: `merge_method: model_stock
base_model: base
models:
  - model: a
  - model: b
  - model: c
parameters: {filter_wise: true}
`,
  sce: `merge_method: sce
base_model: base
models:
  - model: a
  - model: b
  - model: c
parameters: {select_topk: 0.5}
`,
  nearswap: `merge_method: nearswap
base_model: base
models:
  - model: c
parameters: {t: 0.3}
`,
  ram: `merge_method: ram
base_model: base
models:
  - model: a
  - model: b
  - model: c
parameters: {epsilon: 0.4}
`,
  emr: `merge_method: emr
base_model: base
models:
  - model: a
  - model: b
  - model: c
`,
  passthrough: `merge_method: passthrough
models:
  - model: b
    parameters:
      scale:
        - filter: mlp
          value: [0.5, 2]
        - value: 1
`,
};

function recipeFor(method: string): string {
  const other = OTHER_RECIPES[method];
  if (other !== undefined) return other;
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
  const gamma = method.startsWith('breadcrumbs')
    ? ', gamma: 0.05'
    : method.startsWith('della')
      ? ', epsilon: 0.2'
      : '';
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
  let shape: readonly number[] = [];
  const read = async (uri: string) => {
    const ck = await open(uri);
    try {
      shape = vocab ? [40, ...ck.info(name).shape.slice(1)] : ck.info(name).shape;
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
    base: method.base !== 'none' && recipe.base !== null ? await read(recipe.base!.uri) : null,
    models,
    params: resolved.params,
    context: { name, layerIndex: role.layerIndex, seed: recipe.seed, shape },
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
      if (recipe.models.length > 1) expect(warnings.join('\n')).toContain('cropped to the common 40 rows');
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
        recipe.base === null && recipe.models.length > 1
          ? 'base_model:\n' + recipe.models.map((m) => `  - ${m.ref.uri}\n`).join('')
          : `base_model: ${reference}\n`,
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
    const recipe = parseRecipeYaml(
      'merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: tied\n    parameters: {weight: 3}\n',
    );
    const plan = await planMerge(recipe, { modelRoot: root });
    const head = plan.tensors.find((t) => t.name === 'lm_head.weight')!;
    expect(head.models.map((m) => m.source.tensor)).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
    const out = path.join(root, 'out-tied');
    await executeMerge(plan, out);
    const [ck, b, t] = await Promise.all(
      [out, path.join(root, 'base'), path.join(root, 'tied')].map((d) => Checkpoint.open(d)),
    );
    try {
      const got = await ck!.readFloats('lm_head.weight', 'F64');
      const x = await b!.readFloats('lm_head.weight', 'F64');
      const y = await t!.readFloats('model.embed_tokens.weight', 'F64');
      got.forEach((v, i) =>
        expect(Math.abs(v - Math.fround((x[i]! + 3 * y[i]!) / 4))).toBeLessThanOrEqual(1e-6),
      );
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
      for (const m of resolved.models)
        models.push({ id: m.id, tensor: await read(m.ref.uri), params: m.params });
      const ref = method.merge({
        base: await read('base'),
        models,
        params: resolved.params,
        context: { name, layerIndex: 1, seed: 42n },
      });
      expect(ck.info(name).dtype).toBe('F32');
      expect(Array.from(await ck.readFloats(name, 'F32'))).toEqual(Array.from(Float32Array.from(ref)));
    } finally {
      await ck.close();
    }
  }, 30_000); // starts a worker pool
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

  // poolMinElements 100: the norms (16 elements) are done on the main thread beside the matrices' merges
  it.each([16, 100])(
    'a cancelled ties merge on the pool (its writes running behind the next merge) leaves nothing (poolMinElements %i)',
    async (poolMin) => {
      const out = path.join(root, `out-cancelled-ties-${poolMin}`);
      const controller = new AbortController();
      const plan = await planMerge(parseRecipeYaml(recipeFor('ties')), { modelRoot: root });
      let calls = 0;
      const error = await executeMerge(plan, out, {
        threads: 2,
        poolMinElements: poolMin,
        signal: controller.signal,
        onProgress: () => {
          if (++calls === 4) controller.abort();
        },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MergeCancelledError);
      expect(await leftovers(out)).toEqual([]);
      // and uncancelled, the same plan writes every tensor
      const done = await executeMerge(plan, out, { threads: 2, poolMinElements: poolMin });
      expect(done.tensors).toBe(plan.tensors.length);
      expect(existsSync(out)).toBe(true);
    },
  );
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

describe('slices (frankenmerges)', () => {
  const readTensor = async (dir: string, name: string) => {
    const ck = await Checkpoint.open(path.join(root, dir));
    try {
      return Array.from(await ck.readFloats(name, 'F32'));
    } finally {
      await ck.close();
    }
  };

  it('passthrough: stacks layer ranges, renumbers them, rewrites num_hidden_layers and the index', async () => {
    const recipe = parseRecipeYaml(`merge_method: passthrough
slices:
  - sources: [{model: b, layer_range: [0, 2]}]
  - sources: [{model: c, layer_range: [1, 2]}]
  - sources: [{model: b, layer_range: [0, 1]}]
`);
    const out = path.join(root, 'out-franken-passthrough');
    expect(formatPlanSummary(await planMerge(recipe, { modelRoot: root }))).toMatch(
      /architecture +llama, 4 layers from 3 slices/,
    );
    await runMerge(recipe, out, {
      modelRoot: root,
      shardBytes: 6000,
      maxMemory: 3000,
      threads: 2,
      poolMinElements: 16,
    });
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config['num_hidden_layers']).toBe(4);
    const index = JSON.parse(await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8')) as {
      weight_map: Record<string, string>;
    };
    const names = expectedTensors(architectureFromConfig({ ...CONFIG, num_hidden_layers: 4 })).map(
      (t) => t.name,
    );
    expect(Object.keys(index.weight_map).sort()).toEqual([...names].sort());
    const dir = path.basename(out);
    const sources: [number, string, number][] = [
      [0, 'b', 0],
      [1, 'b', 1],
      [2, 'c', 1],
      [3, 'b', 0],
    ];
    for (const [outLayer, model, inLayer] of sources) {
      for (const suffix of ['self_attn.q_proj.weight', 'mlp.down_proj.weight', 'input_layernorm.weight']) {
        expect(await readTensor(dir, `model.layers.${outLayer}.${suffix}`)).toEqual(
          await readTensor(model, `model.layers.${inLayer}.${suffix}`),
        );
      }
    }
    // embeddings from the first slice's source, head and final norm from the last one's
    expect(await readTensor(dir, 'model.embed_tokens.weight')).toEqual(
      (await readTensor('b', 'model.embed_tokens.weight')).slice(0, 40 * 16),
    );
    expect(await readTensor(dir, 'model.norm.weight')).toEqual(await readTensor('b', 'model.norm.weight'));
  });

  it('a method per slice over equal-length sources, with gradients interpolated within each slice', async () => {
    const recipe = parseRecipeYaml(`merge_method: linear
slices:
  - sources:
      - {model: base, layer_range: [0, 2], parameters: {weight: [1, 0]}}
      - {model: b, layer_range: [0, 2], parameters: {weight: [0, 1]}}
  - sources:
      - {model: base, layer_range: [1, 2]}
      - {model: b, layer_range: [0, 1]}
    parameters: {weight: 0.5}
`);
    const out = path.join(root, 'out-franken-linear');
    await runMerge(recipe, out, { modelRoot: root });
    const dir = path.basename(out);
    const q = (l: number) => `model.layers.${l}.self_attn.q_proj.weight`;
    const close = (a: number[], b: number[]) =>
      a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(1e-6));
    close(await readTensor(dir, q(0)), await readTensor('base', q(0))); // t = 0: weights (1, 0)
    close(await readTensor(dir, q(1)), await readTensor('b', q(1))); // t = 1: weights (0, 1)
    const baseL1 = await readTensor('base', q(1));
    const bL0 = await readTensor('b', q(0));
    close(
      await readTensor(dir, q(2)),
      baseL1.map((v, i) => 0.5 * v + 0.5 * bL0[i]!),
    );
    // pre-layer tensors: the first slice at t = 0
    close(
      await readTensor(dir, 'model.embed_tokens.weight'),
      await readTensor('base', 'model.embed_tokens.weight'),
    );
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config['num_hidden_layers']).toBe(3);
  });

  it('refuses unequal sources in a slice, models with slices, and a range past the model', async () => {
    expect(() =>
      parseRecipeYaml(`merge_method: linear
slices:
  - sources:
      - {model: base, layer_range: [0, 2], parameters: {weight: 1}}
      - {model: b, layer_range: [0, 1], parameters: {weight: 1}}
`),
    ).toThrow(/slices\[0\]\.sources: every source of a slice must span the same number of layers/);
    expect(() =>
      parseRecipeYaml(`merge_method: passthrough
models: [{model: b}]
slices:
  - sources: [{model: b, layer_range: [0, 2]}]
`),
    ).toThrow(/either models or slices/);
    const past = parseRecipeYaml(`merge_method: passthrough
slices:
  - sources: [{model: b, layer_range: [1, 3]}]
`);
    await expect(planMerge(past, { modelRoot: root })).rejects.toThrow(/layer_range.*which has 2/);
  });
});

describe('emr (elect, mask, rescale)', () => {
  it('writes the shared model plus per-task 1-bit masks and rescalers; each task materialises to theta_base + lambda_t M_t tau_uni', async () => {
    const recipe = parseRecipeYaml(recipeFor('emr'));
    const out = path.join(root, 'out-emr-tasks');
    const result = await runMerge(recipe, out, { modelRoot: root });
    expect(result.emr?.tasks.map((t) => t.task)).toEqual(['a', 'b', 'c']);
    const names = expectedTensors(architectureFromConfig(CONFIG)).map((t) => t.name);
    const read = async (dir: string, name: string) => {
      const ck = await Checkpoint.open(path.join(root, dir));
      try {
        return Array.from(
          await ck.readFloats(name, 'F64', isVocabularyTensor(name) ? { rows: [0, 40] } : {}),
        );
      } finally {
        await ck.close();
      }
    };
    // the f64 reference over the whole model
    const inputs = new Map<string, { base: number[]; tasks: number[][]; tau: number[] }>();
    const sums = [0, 0, 0].map(() => ({ delta: 0, masked: 0 }));
    for (const name of names) {
      const base = await read('base', name);
      const tasks = [await read('a', name), await read('b', name), await read('c', name)];
      const tau = base.map((b, i) => {
        const d = tasks.map((x) => x[i]! - b);
        const sign = d.reduce((a, v) => a + v, 0) >= 0 ? 1 : -1;
        return sign * Math.max(0, ...d.filter((v) => Math.sign(v) === sign).map(Math.abs));
      });
      tasks.forEach((x, k) =>
        base.forEach((b, i) => {
          const d = x[i]! - b;
          sums[k]!.delta += Math.abs(d);
          if (d * tau[i]! > 0) sums[k]!.masked += Math.abs(tau[i]!);
        }),
      );
      inputs.set(name, { base, tasks, tau });
    }
    // the shared model is theta_base + tau_uni
    for (const name of names) {
      const { base, tau } = inputs.get(name)!;
      const got = await read(path.basename(out), name);
      got.forEach((v, i) =>
        expect(Math.abs(v - (base[i]! + tau[i]!))).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v))),
      );
    }
    for (const [k, model] of ['a', 'b', 'c'].entries()) {
      const task = emrTaskName({ uri: model, modelId: '' });
      const manifest = JSON.parse(
        await readFile(path.join(out, 'tasks', task, 'task.json'), 'utf8'),
      ) as EmrTaskManifest;
      const lambda = sums[k]!.delta / sums[k]!.masked;
      expect(Math.abs(manifest.lambda - lambda)).toBeLessThan(1e-9 * lambda);
      const maskBytes = (await readFile(path.join(out, 'tasks', task, 'masks.bin'))).byteLength;
      expect(maskBytes).toBe(manifest.maskBytes);
      expect(maskBytes).toBeLessThanOrEqual(manifest.fp16Bytes / 16);
      const dir = path.join(root, `out-emr-task-${model}`);
      await materializeEmrTask(out, task, dir);
      const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(config['num_hidden_layers']).toBe(2);
      for (const name of names) {
        const { base, tasks, tau } = inputs.get(name)!;
        const ref = base.map((b, i) => b + ((tasks[k]![i]! - b) * tau[i]! > 0 ? lambda * tau[i]! : 0));
        const got = await read(path.basename(dir), name);
        let err = 0;
        let scale = 0;
        ref.forEach((r, i) => {
          err = Math.max(err, Math.abs(got[i]! - r));
          scale = Math.max(scale, Math.abs(r));
        });
        expect(err, `${model} ${name}`).toBeLessThanOrEqual(1e-6 * scale);
      }
    }
    // row blocks on two threads write the same masks and rescalers
    const blocked = path.join(root, 'out-emr-blocked');
    await runMerge(recipe, blocked, { modelRoot: root, maxMemory: 4000, threads: 2, poolMinElements: 16 });
    for (const task of ['a', 'b', 'c']) {
      for (const file of ['masks.bin', 'task.json']) {
        expect(await readFile(path.join(blocked, 'tasks', task, file))).toEqual(
          await readFile(path.join(out, 'tasks', task, file)),
        );
      }
    }
    await expect(materializeEmrTask(out, 'nope', path.join(root, 'out-emr-nope'))).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });
});

describe('scope: global trimming (one threshold over the whole model)', () => {
  const names = () => expectedTensors(architectureFromConfig(CONFIG)).map((t) => t.name);
  const readF32 = async (dir: string, name: string) => {
    const ck = await Checkpoint.open(path.join(root, dir));
    try {
      return await ck.readFloats(name, 'F32', isVocabularyTensor(name) ? { rows: [0, 40] } : {});
    } finally {
      await ck.close();
    }
  };
  /** The k-th largest |delta| of a model over every tensor (sorted, f32 deltas as the merge computes them). */
  const kthOfModel = async (model: string, k: number) => {
    const all: number[] = [];
    for (const name of names()) {
      const base = await readF32('base', name);
      const x = await readF32(model, name);
      for (let i = 0; i < x.length; i++) all.push(Math.abs(Math.fround(x[i]! - base[i]!)));
    }
    all.sort((a, b) => b - a);
    return { value: all[k - 1]!, total: all.length };
  };

  it.each([
    ['ties', ''],
    ['breadcrumbs_ties', ', gamma: 0.02'],
  ])('%s: keeps |delta| >= the model-wide k-th magnitude in every tensor', async (method, gamma) => {
    const recipe = parseRecipeYaml(`merge_method: ${method}
base_model: base
models:
  - model: a
    parameters: {weight: 0.7, density: 0.3${gamma}}
  - model: b
    parameters: {weight: 0.5, density: 0.6${gamma}}
parameters: {scope: global}
`);
    const out = path.join(root, `out-global-${method}`);
    await runMerge(recipe, out, { modelRoot: root });
    const m = getMethod(method);
    const trim: Record<string, { keepAbove: number; dropAbove: number | null }> = {};
    for (const [model, density] of [
      ['a', 0.3],
      ['b', 0.6],
    ] as const) {
      const total = (await kthOfModel(model, 1)).total;
      let nTop = gamma === '' ? 0 : Math.floor(0.02 * total);
      let keep = Math.floor(density * total);
      if (nTop > 0) {
        let nBot = total - keep - nTop;
        if (nBot < 0) {
          nTop += nBot;
          nBot = 0;
        }
        keep = total - nBot;
      }
      trim[model] = {
        keepAbove: (await kthOfModel(model, keep)).value,
        dropAbove: nTop > 0 ? (await kthOfModel(model, nTop)).value : null,
      };
    }
    const ck = await Checkpoint.open(out);
    try {
      let kept = 0;
      let total = 0;
      for (const name of names()) {
        const resolved = resolveTensorParameters(recipe, m, name, 0);
        const base = await readF32('base', name);
        const models = [];
        for (const pm of resolved.models)
          models.push({ id: pm.id, tensor: await readF32(pm.ref.uri, name), params: pm.params });
        const ref = m.merge({
          base,
          models,
          params: resolved.params,
          context: { name, layerIndex: null, seed: 0n, globalTrim: trim },
        });
        const got = await ck.readFloats(name, 'F32');
        for (let i = 0; i < ref.length; i++)
          expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(ref[i]!)));
        // and the tensors differ in how much they keep (not a per-tensor top-k)
        const a = await readF32('a', name);
        for (let i = 0; i < a.length; i++) {
          const d = Math.abs(Math.fround(a[i]! - base[i]!));
          if (d >= trim['a']!.keepAbove && (trim['a']!.dropAbove === null || d < trim['a']!.dropAbove))
            kept++;
          total++;
        }
      }
      expect(Math.abs(kept / total - 0.3)).toBeLessThan(0.01);
    } finally {
      await ck.close();
    }
  });

  it('refuses global scope for della and for a density that varies over the model', async () => {
    const della = parseRecipeYaml(`merge_method: della
base_model: base
models:
  - model: a
    parameters: {weight: 1, density: 0.5}
parameters: {scope: global}
`);
    await expect(planMerge(della, { modelRoot: root })).rejects.toThrow(
      /scope: global is not supported by della/,
    );
    const varying = parseRecipeYaml(`merge_method: ties
base_model: base
models:
  - model: a
    parameters: {weight: 1, density: [0.3, 0.6]}
parameters: {scope: global}
`);
    await expect(
      runMerge(varying, path.join(root, 'out-global-varying'), { modelRoot: root }),
    ).rejects.toThrow(/one density \(and gamma\) per model/);
  });
});

describe('NaN / Inf in an input: the same report on one thread and on the pool', () => {
  const tensor = 'model.layers.1.mlp.up_proj.weight';

  /** A copy of model `from` (BF16) with a NaN at flat index `at` of `tensor`. */
  async function withNaN(name: string, from: string, at: number): Promise<string> {
    const src = await Checkpoint.open(path.join(root, from));
    const dir = path.join(root, name);
    try {
      const specs = src.tensors().map((t) => ({ name: t.name, dtype: 'BF16' as DType, shape: t.shape }));
      const writer = await CheckpointWriter.create(dir, specs);
      for (const s of specs) {
        const values = await src.readFloats(s.name, 'F32');
        if (s.name === tensor) values[at] = Number.NaN;
        await writer.writeFloats(s.name, values);
      }
      await writer.writeFile('config.json', JSON.stringify(CONFIG));
      await writer.commit();
    } finally {
      await src.close();
    }
    return dir;
  }

  it('fails naming the file, tensor and index, or warns and merges the same bytes', async () => {
    await withNaN('nan-a', 'a', 37);
    const recipe = parseRecipeYaml(`merge_method: task_arithmetic
base_model: base
models:
  - model: b
    parameters: {weight: 0.5}
  - model: nan-a
    parameters: {weight: 0.5}
out_dtype: bfloat16
`);
    const messages: string[] = [];
    for (const threads of [1, 2]) {
      const out = path.join(root, `out-nan-${threads}`);
      const error = await runMerge(recipe, out, { modelRoot: root, threads, poolMinElements: 16 }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidArgumentError);
      messages.push((error as Error).message);
      expect(await leftovers(out)).toEqual([]);
    }
    expect(messages[0]).toMatch(/nan-a.*up_proj\.weight.*NaN.*flat index 37/);
    expect(messages[1]).toBe(messages[0]);

    const warned: string[][] = [];
    const bytes: Buffer[] = [];
    for (const threads of [1, 2]) {
      const out = path.join(root, `out-nan-warn-${threads}`);
      const warnings: string[] = [];
      await runMerge(recipe, out, {
        modelRoot: root,
        threads,
        poolMinElements: 16,
        nonFinite: 'warn',
        onWarning: (w) => warnings.push(w),
      });
      warned.push(warnings.filter((w) => /non-finite/.test(w)));
      bytes.push(await readFile(path.join(out, 'model.safetensors')));
    }
    expect(warned[0]).toHaveLength(1);
    expect(warned[1]).toEqual(warned[0]);
    expect(bytes[1]!.equals(bytes[0]!)).toBe(true);
  }, 60_000); // starts a worker pool

  it.each([
    ['task_arithmetic', '{weight: 0.5}'], // all-bf16 inputs: the fused bf16 kernel on the pool
    ['ties', '{weight: 0.5, density: 0.5}'], // whole tensors decoded on the pool (decodeDeltas)
    ['dare_ties', '{weight: 0.5, density: 0.5}'],
  ])(
    '%s on bf16 inputs: the same report and bytes on one thread and on the pool',
    async (method, params) => {
      // bf16 copies (at -1: no NaN) and the NaN one, made by the first case that needs them
      for (const [name, from, at] of [
        ['bf16-base', 'base', -1],
        ['bf16-b', 'b', -1],
        ['bf16-c', 'c', -1],
        ['nan-a', 'a', 37],
      ] as const)
        if (!existsSync(path.join(root, name))) await withNaN(name, from, at);
      const recipe = (bad: string) =>
        parseRecipeYaml(`merge_method: ${method}
base_model: bf16-base
models:
  - model: bf16-b
    parameters: ${params}
  - model: ${bad}
    parameters: ${params}
out_dtype: bfloat16
seed: 3
`);
      const messages: string[] = [];
      const bytes: Buffer[] = [];
      for (const threads of [1, 2]) {
        const out = path.join(root, `out-bf16-${method}-nan-${threads}`);
        const error = await runMerge(recipe('nan-a'), out, {
          modelRoot: root,
          threads,
          poolMinElements: 16,
        }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidArgumentError);
        messages.push((error as Error).message);
        const clean = path.join(root, `out-bf16-${method}-${threads}`);
        await runMerge(recipe('bf16-c'), clean, { modelRoot: root, threads, poolMinElements: 16 });
        bytes.push(await readFile(path.join(clean, 'model.safetensors')));
      }
      expect(messages[0]).toMatch(/nan-a.*up_proj\.weight.*NaN.*flat index 37/);
      expect(messages[1]).toBe(messages[0]);
      expect(bytes[1]!.equals(bytes[0]!)).toBe(true);
    },
    60_000,
  ); // starts a worker pool
});

describe('whole-tensor generalized task arithmetic on the pool', () => {
  it('ties on three bf16 models, tensors large enough for the one-pass form: the bytes of one thread, NaN included', async () => {
    const config = { ...CONFIG, vocab_size: 600, hidden_size: 64, intermediate_size: 160 };
    for (const [name, seed] of [
      ['big-base', 21],
      ['big-a', 22],
      ['big-b', 23],
      ['big-c', 24],
    ] as const)
      if (!existsSync(path.join(root, name))) await writeModel(name, seed, { dtype: 'BF16', config });
    // big-c with a NaN and an Inf in its embeddings, and a NaN in every tensor (so the warnings' order
    // shows when the norms run on the main thread beside the next matrix)
    const src = await Checkpoint.open(path.join(root, 'big-c'));
    const specs = src.tensors().map((t) => ({ name: t.name, dtype: 'BF16' as DType, shape: t.shape }));
    const writer = await CheckpointWriter.create(path.join(root, 'big-nan'), specs);
    for (const sp of specs) {
      const values = await src.readFloats(sp.name, 'F32');
      values[3] = Number.NaN;
      if (sp.name === 'model.embed_tokens.weight') {
        values[1234] = Number.NaN;
        values[20_000] = Number.POSITIVE_INFINITY;
      }
      await writer.writeFloats(sp.name, values);
    }
    await writer.writeFile('config.json', JSON.stringify(config));
    await writer.commit();
    await src.close();
    const recipe = (last: string, normalize: boolean) =>
      parseRecipeYaml(`merge_method: ties
base_model: big-base
models:
  - model: big-a
    parameters: {weight: 0.5, density: 0.4}
  - model: big-b
    parameters: {weight: 0.3, density: 0.7}
  - model: ${last}
    parameters: {weight: 0.2, density: 0.5}
parameters: {normalize: ${normalize}}
out_dtype: bfloat16
`);
    for (const [last, normalize] of [
      ['big-c', true],
      ['big-nan', false],
    ] as const) {
      const bytes: Buffer[] = [];
      const warned: string[][] = [];
      // the third run keeps the norms (64 elements) off the raw path: they are done on the main thread
      // while the workers merge the next matrix
      for (const [threads, poolMin] of [
        [1, 16],
        [2, 16],
        [2, 1000],
      ] as const) {
        const out = path.join(root, `out-big-${last}-${threads}-${poolMin}`);
        const warnings: string[] = [];
        await runMerge(recipe(last, normalize), out, {
          modelRoot: root,
          threads,
          poolMinElements: poolMin,
          nonFinite: 'warn',
          onWarning: (w) => warnings.push(w),
        });
        warned.push(warnings);
        bytes.push(await readFile(path.join(out, 'model.safetensors')));
      }
      expect(bytes[1]!.equals(bytes[0]!)).toBe(true);
      expect(bytes[2]!.equals(bytes[0]!)).toBe(true);
      expect(warned[1]).toEqual(warned[0]);
      expect(warned[2]).toEqual(warned[0]);
      if (last === 'big-nan')
        expect(warned[0]!.filter((w) => /non-finite/.test(w))).toHaveLength(specs.length);
    }
  }, 60_000); // starts a worker pool

  it.each([
    ['ties', ''],
    ['ties', 'parameters: {rescale: l1}\n'],
    ['dare_ties', ''],
    ['dare_ties', 'parameters: {rescale: none, normalize: true}\n'],
  ])(
    '%s %s: the same bytes on two threads as on one',
    async (method, extra) => {
      const recipe = parseRecipeYaml(`merge_method: ${method}
base_model: base
models:
  - model: a
    parameters: {weight: 0.5, density: 0.4}
  - model: b
    parameters: {weight: 0.3, density: 0.7}
  - model: c
    parameters: {weight: 0.2, density: 0.5}
${extra}out_dtype: bfloat16
seed: 7
`);
      const bytes: Buffer[] = [];
      for (const threads of [1, 2]) {
        const out = path.join(root, `out-pool-${method}-${extra.length}-${threads}`);
        await runMerge(recipe, out, { modelRoot: root, threads, poolMinElements: 16 });
        bytes.push(await readFile(path.join(out, 'model.safetensors')));
      }
      expect(bytes[1]!.equals(bytes[0]!)).toBe(true);
    },
    60_000,
  ); // starts a worker pool
});
