import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Checkpoint, CheckpointWriter, type TensorSpec } from '@hm3/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelConfig } from './config.js';
import { InvalidPathError } from './errors.js';
import {
  AFFINE_FILE_NAME,
  ExportTargetExistsError,
  exportPathCheckpoint,
  InvalidExportedPathError,
  loadExportedPath,
  PATH_FILE_NAME,
  UnexportablePathError,
  type ExportedPathFile,
} from './export-path.js';
import { seededPrompts } from './fixtures.test-helper.js';
import { sequenceLogits } from './inference.js';
import { ownPath, type InferencePath } from './inference-path.js';
import { ModelRuntime } from './runtime.js';

const VOCAB = 40;
const HIDDEN = 32;
const LAYERS = 3;

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A tiny random Llama checkpoint (bf16) with config, tokenizer_config and generation_config. */
async function makeLlama(dir: string, seed: number, config: Record<string, unknown> = {}): Promise<string> {
  const cfg: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: VOCAB,
    hidden_size: HIDDEN,
    intermediate_size: 48,
    num_hidden_layers: LAYERS,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    max_position_embeddings: 64,
    bos_token_id: 1,
    eos_token_id: 2,
    ...config,
  };
  const layers = cfg['num_hidden_layers'] as number;
  const d = HIDDEN / 4;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [VOCAB, HIDDEN]]];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    shapes.push(
      [`${p}input_layernorm.weight`, [HIDDEN]],
      [`${p}self_attn.q_proj.weight`, [4 * d, HIDDEN]],
      [`${p}self_attn.k_proj.weight`, [2 * d, HIDDEN]],
      [`${p}self_attn.v_proj.weight`, [2 * d, HIDDEN]],
      [`${p}self_attn.o_proj.weight`, [HIDDEN, 4 * d]],
      [`${p}post_attention_layernorm.weight`, [HIDDEN]],
      [`${p}mlp.gate_proj.weight`, [48, HIDDEN]],
      [`${p}mlp.up_proj.weight`, [48, HIDDEN]],
      [`${p}mlp.down_proj.weight`, [HIDDEN, 48]],
    );
  }
  shapes.push(['model.norm.weight', [HIDDEN]]);
  if (!cfg['tie_word_embeddings']) shapes.push(['lm_head.weight', [VOCAB, HIDDEN]]);
  const specs: TensorSpec[] = shapes.map(([name, shape]) => ({ name, dtype: 'BF16', shape }));
  const writer = await CheckpointWriter.create(dir, specs);
  const next = rng(seed);
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.endsWith('norm.weight');
    const values = Float32Array.from({ length: n }, () =>
      isNorm ? 1 + 0.4 * (next() - 0.5) : 0.6 * (next() - 0.5),
    );
    await writer.writeFloats(name, values);
  }
  await writer.writeFile('config.json', JSON.stringify(cfg, null, 2));
  await writer.writeFile('tokenizer_config.json', JSON.stringify({ model: path.basename(dir) }));
  await writer.writeFile('generation_config.json', JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
  await writer.commit();
  return dir;
}

let root: string;
let models: { a: string; b: string; c: string; tied: string; otherRope: string; wide: string };
let runtime: ModelRuntime;
let prompts: number[][];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hm3-export-path-'));
  models = {
    a: await makeLlama(path.join(root, 'src/a'), 1),
    b: await makeLlama(path.join(root, 'src/b'), 2),
    c: await makeLlama(path.join(root, 'src/c'), 3, {
      layer_types: ['full_attention', 'full_attention', 'full_attention'],
    }),
    tied: await makeLlama(path.join(root, 'src/tied'), 4, { tie_word_embeddings: true }),
    otherRope: await makeLlama(path.join(root, 'src/other-rope'), 5, { rope_theta: 500000 }),
    wide: await makeLlama(path.join(root, 'src/wide'), 6, { intermediate_size: 64 }),
  };
  runtime = new ModelRuntime({ intraOpThreads: 1 });
  prompts = seededPrompts(6, VOCAB, 2026, 2, 16);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

function seededAffine(seed: number): { scale: number[]; shift: number[] } {
  const next = rng(seed);
  return {
    scale: Array.from({ length: HIDDEN }, () => 0.7 + 0.6 * next()),
    shift: Array.from({ length: HIDDEN }, () => 0.4 * (next() - 0.5)),
  };
}

async function logits(p: InferencePath): Promise<Float32Array[]> {
  return sequenceLogits(await runtime.path(p), prompts);
}

function maxDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  a.forEach((x, i) => {
    expect(x.length).toBe(b[i]!.length);
    x.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i]![j]!))));
  });
  return max;
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

let outCount = 0;
const outDir = () => path.join(root, 'out', `export-${++outCount}`);

describe('exportPathCheckpoint: a path without affine maps', () => {
  let path1: InferencePath;
  let dir: string;
  let report: Awaited<ReturnType<typeof exportPathCheckpoint>>;

  beforeAll(async () => {
    path1 = {
      pool: [models.a, models.b, models.c],
      steps: [
        { poolIndex: 0, layerIndex: 1 },
        { poolIndex: 2, layerIndex: 0 },
        { poolIndex: 1, layerIndex: 2 },
        { poolIndex: 0, layerIndex: 1 },
        { poolIndex: 2, layerIndex: 2 },
      ],
      headSource: 1,
    };
    dir = outDir();
    report = await exportPathCheckpoint(path1, dir);
  });

  it('renumbers the layers and copies every tensor byte for byte, dtype kept', async () => {
    const out = await Checkpoint.open(dir);
    const sources = await Promise.all(path1.pool.map((d) => Checkpoint.open(d)));
    try {
      const layerNames = out.names().filter((n) => n.startsWith('model.layers.'));
      expect(new Set(layerNames.map((n) => n.split('.')[2]))).toEqual(new Set(['0', '1', '2', '3', '4']));
      expect(layerNames).toHaveLength(5 * 9);
      for (const [i, s] of path1.steps.entries()) {
        for (const part of ['self_attn.q_proj.weight', 'mlp.down_proj.weight', 'input_layernorm.weight']) {
          const info = out.info(`model.layers.${i}.${part}`);
          expect(info.dtype).toBe('BF16');
          expect(await out.readBytes(`model.layers.${i}.${part}`)).toEqual(
            await sources[s.poolIndex]!.readBytes(`model.layers.${s.layerIndex}.${part}`),
          );
        }
      }
      for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight'])
        expect(await out.readBytes(name)).toEqual(await sources[1]!.readBytes(name));
      expect(out.names()[0]).toBe('model.embed_tokens.weight');
      expect(out.sharded).toBe(false);
    } finally {
      await Promise.all([out, ...sources].map((c) => c.close()));
    }
  });

  it("rewrites the head source's config (num_hidden_layers) and copies its side files", async () => {
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const source = JSON.parse(await readFile(path.join(models.b, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config).toEqual({ ...source, num_hidden_layers: 5 });
    expect((await readModelConfig(dir)).numLayers).toBe(5);
    expect(JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'))).toEqual({
      model: 'b',
    });
    expect(await readFile(path.join(dir, 'generation_config.json'), 'utf8')).toBe(
      await readFile(path.join(models.b, 'generation_config.json'), 'utf8'),
    );
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(
      [
        'config.json',
        'generation_config.json',
        PATH_FILE_NAME,
        'model.safetensors',
        'tokenizer_config.json',
      ].sort(),
    );
  });

  it('records the path and the sources with the sha256 of their weight files', async () => {
    const recorded = JSON.parse(await readFile(path.join(dir, PATH_FILE_NAME), 'utf8')) as ExportedPathFile;
    expect(recorded.standalone).toBe(true);
    expect(recorded.headSource).toBe(1);
    expect(recorded.affineFile).toBeNull();
    expect(recorded.steps).toEqual(
      path1.steps.map((s, layer) => ({
        layer,
        poolIndex: s.poolIndex,
        layerIndex: s.layerIndex,
        affine: false,
      })),
    );
    expect(recorded.sources.map((s) => s.dir)).toEqual(path1.pool.map((d) => path.resolve(d)));
    for (const s of recorded.sources) {
      expect(s.files).toHaveLength(1);
      expect(s.files[0]!.name).toBe('model.safetensors');
      expect(s.files[0]!.sha256).toBe(await sha256(path.join(s.dir, 'model.safetensors')));
    }
    expect(report.sources).toEqual(recorded.sources);
  });

  it('reports the bytes written and leaves no temporary folder', async () => {
    let total = 0;
    for (const f of await readdir(dir)) total += (await stat(path.join(dir, f))).size;
    expect(report.bytes).toBe(total);
    expect(report.standalone).toBe(true);
    expect(report.affineSteps).toBe(0);
    expect(report.numLayers).toBe(5);
    expect(report.tensorBytes).toBeLessThan(report.bytes);
    expect(report.files).toContain('model.safetensors');
    expect((await readdir(path.dirname(dir))).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('runs in our runtime with exactly the logits of the original path', async () => {
    const expected = await logits(path1);
    expect(maxDiff(await logits(ownPath(dir, 5)), expected)).toBe(0);
    expect(maxDiff(await logits(await loadExportedPath(dir)), expected)).toBe(0);
    expect(expected.some((x) => x.some((v) => Math.abs(v) > 0.1))).toBe(true);
  });
});

describe('exportPathCheckpoint: a path with affine maps', () => {
  it('writes hm3-affine.safetensors and a README; loadExportedPath gives the same path and the same logits', async () => {
    const a1 = seededAffine(11);
    const a3 = seededAffine(13);
    const p: InferencePath = {
      pool: [models.a, models.tied],
      steps: [
        { poolIndex: 1, layerIndex: 0, affine: a1 },
        { poolIndex: 0, layerIndex: 2 },
        { poolIndex: 0, layerIndex: 0, affine: a3 },
      ],
      headSource: 1,
    };
    const dir = outDir();
    const report = await exportPathCheckpoint(p, dir);
    expect(report.standalone).toBe(false);
    expect(report.affineSteps).toBe(2);
    expect(report.files).toEqual(expect.arrayContaining([AFFINE_FILE_NAME, 'README.md', PATH_FILE_NAME]));
    const readme = await readFile(path.join(dir, 'README.md'), 'utf8');
    expect(readme).toContain("Only HM3's runtime applies these maps");
    expect(readme).toContain(AFFINE_FILE_NAME);

    const loaded = await loadExportedPath(dir);
    expect(loaded.pool).toEqual([path.resolve(dir)]);
    expect(loaded.steps.map((s) => s.layerIndex)).toEqual([0, 1, 2]);
    expect(loaded.steps[1]!.affine).toBeUndefined();
    for (const [i, a] of [[0, a1] as const, [2, a3] as const]) {
      expect(Array.from(loaded.steps[i]!.affine!.scale)).toEqual(Array.from(Float32Array.from(a.scale)));
      expect(Array.from(loaded.steps[i]!.affine!.shift)).toEqual(Array.from(Float32Array.from(a.shift)));
    }
    // the tied head source: no lm_head, as in the source
    const ckpt = await Checkpoint.open(dir);
    expect(ckpt.has('lm_head.weight')).toBe(false);
    await ckpt.close();

    const expected = await logits(p);
    expect(maxDiff(await logits(loaded), expected)).toBe(0);
    // without the maps (what transformers would run) the logits differ
    expect(maxDiff(await logits(ownPath(dir, 3)), expected)).toBeGreaterThan(1e-3);
  });

  it('refuses a malformed affine file naming the tensor', async () => {
    const dir = outDir();
    await exportPathCheckpoint(
      { pool: [models.a], steps: [{ poolIndex: 0, layerIndex: 0, affine: seededAffine(3) }], headSource: 0 },
      dir,
    );
    const bad = await mkdtemp(path.join(root, 'bad-'));
    const writer = await CheckpointWriter.create(path.join(bad, 'affine'), [
      { name: 'steps.0.scale', dtype: 'F32', shape: [HIDDEN - 1] },
    ]);
    await writer.writeFloats('steps.0.scale', new Float32Array(HIDDEN - 1));
    await writer.commit();
    await writeFile(
      path.join(dir, AFFINE_FILE_NAME),
      await readFile(path.join(bad, 'affine/model.safetensors')),
    );
    const error = await loadExportedPath(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidExportedPathError);
    expect((error as InvalidExportedPathError).field).toBe('steps.0.scale');
  });
});

describe('exportPathCheckpoint: layout', () => {
  it('shards by the byte budget (index + shards) and still runs identically', async () => {
    const p: InferencePath = {
      pool: [models.a, models.b],
      steps: [
        { poolIndex: 1, layerIndex: 0 },
        { poolIndex: 0, layerIndex: 2 },
      ],
      headSource: 0,
    };
    const dir = outDir();
    const report = await exportPathCheckpoint(p, dir, { shardBytes: 8_000 });
    expect(report.files).toContain('model.safetensors.index.json');
    const ckpt = await Checkpoint.open(dir);
    expect(ckpt.sharded).toBe(true);
    expect(ckpt.files().length).toBeGreaterThan(1);
    await ckpt.close();
    expect(maxDiff(await logits(await loadExportedPath(dir)), await logits(p))).toBe(0);
  });

  it('exports from a sharded source, recording each shard and the index with its sha256', async () => {
    const sharded = outDir();
    await exportPathCheckpoint(ownPath(models.c, LAYERS), sharded, { shardBytes: 8_000 });
    const dir = outDir();
    const report = await exportPathCheckpoint(
      {
        pool: [sharded, models.a],
        steps: [
          { poolIndex: 0, layerIndex: 1 },
          { poolIndex: 1, layerIndex: 0 },
        ],
      },
      dir,
    );
    const names = report.sources[0]!.files.map((f) => f.name);
    expect(names).toContain('model.safetensors.index.json');
    expect(names.filter((n) => n.startsWith('model-'))).toHaveLength(names.length - 1);
    for (const f of report.sources[0]!.files) expect(f.sha256).toBe(await sha256(path.join(sharded, f.name)));
  });

  it('cuts per-layer config lists (layer_types) to follow the steps', async () => {
    const dir = outDir();
    await exportPathCheckpoint(
      {
        pool: [models.c],
        steps: [0, 2, 2, 1].map((layerIndex) => ({ poolIndex: 0, layerIndex })),
        headSource: 0,
      },
      dir,
    );
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config['num_hidden_layers']).toBe(4);
    expect(config['layer_types']).toEqual(Array(4).fill('full_attention'));
  });
});

describe('exportPathCheckpoint: refusals', () => {
  it('refuses a non-empty output folder, naming it, and leaves it untouched', async () => {
    const dir = outDir();
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'keep.txt'), 'mine');
    const error = await exportPathCheckpoint(ownPath(models.a, LAYERS), dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExportTargetExistsError);
    expect((error as ExportTargetExistsError).path).toBe(path.resolve(dir));
    expect((error as ExportTargetExistsError).details).toEqual({ path: path.resolve(dir) });
    expect(await readdir(dir)).toEqual(['keep.txt']);
  });

  it('accepts an existing empty output folder', async () => {
    const dir = outDir();
    await mkdir(dir, { recursive: true });
    await exportPathCheckpoint(ownPath(models.a, 1), dir);
    expect(await readdir(dir)).toContain('model.safetensors');
  });

  it('refuses layers whose numerics the head config cannot describe, naming the step and the field', async () => {
    for (const [other, field] of [
      [models.otherRope, 'ropeTheta'],
      [models.wide, 'intermediateSize'],
    ] as const) {
      const dir = outDir();
      const error = await exportPathCheckpoint(
        {
          pool: [models.a, other],
          steps: [
            { poolIndex: 0, layerIndex: 0 },
            { poolIndex: 1, layerIndex: 1 },
          ],
          headSource: 0,
        },
        dir,
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnexportablePathError);
      expect((error as UnexportablePathError).step).toBe(1);
      expect((error as UnexportablePathError).field).toBe(field);
      await expect(stat(dir)).rejects.toThrow();
    }
  });

  it('refuses an invalid path with InvalidPathError and writes nothing', async () => {
    const dir = outDir();
    const error = await exportPathCheckpoint(
      { pool: [models.a], steps: [{ poolIndex: 0, layerIndex: LAYERS }] },
      dir,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidPathError);
    expect((error as InvalidPathError).rule).toBe('layer-index');
    await expect(stat(dir)).rejects.toThrow();
    expect((await readdir(path.dirname(dir))).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
