import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelConfig } from './config.js';
import {
  DeviceUnavailableError,
  InvalidModelInputError,
  InvalidPathError,
  UnsupportedArchitectureError,
} from './errors.js';
import { randomModels, seededPrompts, zooModels, type RandomModels } from './fixtures.test-helper.js';
import { generateGreedy, loglikelihood, sequenceLogits } from './inference.js';
import { ownPath, type InferencePath } from './inference-path.js';
import { ModelRuntime } from './runtime.js';

let models: RandomModels;
let runtime: ModelRuntime;

beforeAll(async () => {
  models = await randomModels();
  runtime = new ModelRuntime();
}, 900_000);

afterAll(async () => {
  await runtime?.close();
});

function maxDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let max = 0;
  a.forEach((x, i) => {
    expect(x.length).toBe(b[i]!.length);
    x.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i]![j]!))));
  });
  return max;
}

describe('path runner vs the monolithic graph', () => {
  for (const name of ['base', 'translate', 'math', 'code'] as const) {
    it(`${name}: its own path gives the monolithic logits within 1e-6 and the same greedy generations`, async () => {
      const dir = models[name];
      const arch = await readModelConfig(dir);
      const pathModel = await runtime.path(ownPath(dir, arch.numLayers));
      const mono = await runtime.monolithic(dir);
      const prompts = seededPrompts(12, arch.vocabSize, 7);
      const a = await sequenceLogits(pathModel, prompts, 5);
      const b = await sequenceLogits(mono, prompts, 5);
      expect(maxDiff(a, b)).toBeLessThanOrEqual(1e-6);
      expect(a.some((x) => x.some((v) => Math.abs(v) > 0.5))).toBe(true); // not a degenerate model
      const ga = await generateGreedy(pathModel, prompts, { maxNewTokens: 6, batchSize: 5 });
      expect(ga).toEqual(await generateGreedy(mono, prompts, { maxNewTokens: 6, batchSize: 5 }));
      expect(ga.every((g) => g.length === 6)).toBe(true);
      await mono.close();
    });
  }
});

describe('path runner vs the monolithic graph on the trained zoo', () => {
  // trained weights give logits of tens, where a different summation order inside a GEMM shows (~3e-5
  // before the monolithic session stopped pre-packing its weights; see ModelRuntime.monolithic)
  const zoo = zooModels();
  for (const name of ['base', 'translate', 'math', 'code'] as const) {
    it(`${name}: its own path gives the monolithic logits within 1e-6 on 20 prompts, batch 32 and 7`, async () => {
      expect(zoo, 'tools/fixtures/zoo is in the repository').toBeDefined();
      const dir = zoo![name];
      const arch = await readModelConfig(dir);
      const pathModel = await runtime.path(ownPath(dir, arch.numLayers));
      const mono = await runtime.monolithic(dir);
      try {
        const prompts = seededPrompts(20, arch.vocabSize, 2026);
        for (const batchSize of [32, 7]) {
          const a = await sequenceLogits(pathModel, prompts, batchSize);
          const b = await sequenceLogits(mono, prompts, batchSize);
          expect(maxDiff(a, b)).toBeLessThanOrEqual(1e-6);
          expect(a.some((x) => x.some((v) => Math.abs(v) > 5))).toBe(true); // trained: large logits
        }
        const ga = await generateGreedy(pathModel, prompts, { maxNewTokens: 4, eosTokenIds: [] });
        expect(ga).toEqual(await generateGreedy(mono, prompts, { maxNewTokens: 4, eosTokenIds: [] }));
      } finally {
        await mono.close();
      }
    });
  }
});

describe('batching, cache and scoring', () => {
  it('gives a row the same logits alone and in a padded batch', async () => {
    const m = await runtime.path(ownPath(models.base, 3));
    const prompts = seededPrompts(6, 99, 11);
    const batched = await sequenceLogits(m, prompts, 6);
    const alone = await Promise.all(prompts.map(async (p) => (await sequenceLogits(m, [p]))[0]!));
    expect(maxDiff(batched, alone)).toBeLessThanOrEqual(1e-5);
  });

  it('generates with the KV cache what recomputing the whole sequence would', async () => {
    const m = await runtime.path(ownPath(models.code, 3));
    const [prompt] = seededPrompts(1, 99, 3);
    const [generated] = await generateGreedy(m, [prompt!], { maxNewTokens: 5 });
    const seq = [...prompt!];
    for (let i = 0; i < 5; i++) {
      const [logits] = await sequenceLogits(m, [seq]);
      const last = logits!.subarray((seq.length - 1) * 99, seq.length * 99);
      seq.push(last.indexOf(Math.max(...last)));
    }
    expect(generated).toEqual(seq.slice(prompt!.length));
  });

  it('stops a row at an EOS token and keeps the others going', async () => {
    const m = await runtime.path(ownPath(models.base, 3));
    const prompts = seededPrompts(4, 99, 5);
    const free = await generateGreedy(m, prompts, { maxNewTokens: 6 });
    const eos = free[0]![2]!;
    const stopped = await generateGreedy(m, prompts, { maxNewTokens: 6, eosTokenIds: [eos] });
    expect(stopped[0]).toEqual(free[0]!.slice(0, free[0]!.indexOf(eos) + 1));
    free.forEach((f, i) => expect(stopped[i]).toEqual(f.includes(eos) ? f.slice(0, f.indexOf(eos) + 1) : f));
  });

  it('scores continuations: log-probabilities from the logits, greedy flag from the argmax', async () => {
    const m = await runtime.path(ownPath(models.math, 2));
    const [context] = seededPrompts(1, 99, 9);
    const [greedyTokens] = await generateGreedy(m, [context!], { maxNewTokens: 3 });
    const [logits] = await sequenceLogits(m, [[...context!, ...greedyTokens!]]);
    const results = await loglikelihood(m, [
      { context: context!, continuation: greedyTokens! },
      { context: context!, continuation: [greedyTokens![0]! === 4 ? 5 : 4] },
    ]);
    let expected = 0;
    greedyTokens!.forEach((t, j) => {
      const row = Array.from(logits!.subarray((context!.length - 1 + j) * 99, (context!.length + j) * 99));
      const max = Math.max(...row);
      expected += row[t]! - max - Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    });
    expect(results[0]!.logprob).toBeCloseTo(expected, 6);
    expect(results[0]!.greedy).toBe(true);
    expect(results[1]!.greedy).toBe(false);
    expect(results[1]!.logprob).toBeLessThan(0);
  });

  it('loads each layer once and shares it between paths and repeated steps', async () => {
    const rt = new ModelRuntime();
    try {
      const p1 = await rt.path({
        pool: [models.base, models.code],
        steps: [
          { poolIndex: 0, layerIndex: 1 },
          { poolIndex: 1, layerIndex: 0 },
          { poolIndex: 0, layerIndex: 1 },
        ],
        headSource: 0,
      });
      const p2 = await rt.path({
        pool: [models.code, models.base],
        steps: [
          { poolIndex: 1, layerIndex: 1 },
          { poolIndex: 0, layerIndex: 0 },
        ],
        headSource: 1,
      });
      expect(rt.weights.loads).toEqual({ layers: 0, heads: 0 }); // lazy: nothing read before running
      const prompts = seededPrompts(2, 99, 1);
      await sequenceLogits(p1, prompts);
      await sequenceLogits(p2, prompts);
      await generateGreedy(p1, prompts, { maxNewTokens: 2 });
      expect(rt.weights.loads).toEqual({ layers: 2, heads: 1 });
    } finally {
      await rt.close();
    }
  });

  it('refuses tokens outside the vocabulary and empty inputs', async () => {
    const m = await runtime.path(ownPath(models.base, 3));
    await expect(sequenceLogits(m, [[1, 2, 999]])).rejects.toThrow(InvalidModelInputError);
    await expect(sequenceLogits(m, [[]])).rejects.toThrow(InvalidModelInputError);
    await expect(loglikelihood(m, [{ context: [], continuation: [5] }])).rejects.toThrow(
      InvalidModelInputError,
    );
  });
});

describe('bad inference paths', () => {
  const rule = async (path: InferencePath): Promise<{ rule: string; step: number | undefined }> => {
    try {
      await runtime.path(path);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPathError);
      return { rule: (error as InvalidPathError).rule, step: (error as InvalidPathError).step };
    }
    throw new Error('the path was accepted');
  };

  it('refuses mismatched hidden sizes', async () => {
    expect(
      await rule({
        pool: [models.base, models.narrow],
        steps: [
          { poolIndex: 0, layerIndex: 0 },
          { poolIndex: 1, layerIndex: 0 },
        ],
        headSource: 0,
      }),
    ).toEqual({ rule: 'hidden-size', step: 1 });
  });

  it('refuses a layer index out of range', async () => {
    expect(
      await rule({ pool: [models.base, models.math], steps: [{ poolIndex: 1, layerIndex: 2 }] }),
    ).toEqual({ rule: 'layer-index', step: 0 });
    expect(await rule({ pool: [models.base], steps: [{ poolIndex: 0, layerIndex: -1 }] })).toEqual({
      rule: 'layer-index',
      step: 0,
    });
  });

  it('refuses a head_source outside the pool', async () => {
    expect(
      await rule({
        pool: [models.base, models.math],
        steps: [{ poolIndex: 0, layerIndex: 0 }],
        headSource: 2,
      }),
    ).toEqual({ rule: 'head-source', step: undefined });
  });

  it('refuses an affine of the wrong length', async () => {
    const affine = { scale: new Array<number>(63).fill(1), shift: new Array<number>(64).fill(0) };
    expect(
      await rule({
        pool: [models.base],
        steps: [
          { poolIndex: 0, layerIndex: 0 },
          { poolIndex: 0, layerIndex: 1, affine },
        ],
      }),
    ).toEqual({ rule: 'affine-length', step: 1 });
  });

  it('refuses a pool index outside the pool and an empty path', async () => {
    expect(await rule({ pool: [models.base], steps: [{ poolIndex: 1, layerIndex: 0 }] })).toEqual({
      rule: 'pool-index',
      step: 0,
    });
    expect(await rule({ pool: [models.base], steps: [] })).toEqual({ rule: 'empty-steps', step: undefined });
  });

  it('refuses a pool model of an unsupported architecture', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-model-gpt2-'));
    try {
      await cp(models.base, dir, { recursive: true });
      await writeFile(
        path.join(dir, 'config.json'),
        JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_embd: 64 }),
      );
      const error = await runtime
        .path({ pool: [dir], steps: [{ poolIndex: 0, layerIndex: 0 }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedArchitectureError);
      expect((error as UnsupportedArchitectureError).field).toBe('model_type');
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('device: cuda', () => {
  it('runs on the CUDA provider and matches the CPU, or fails with DeviceUnavailableError (never silently on CPU)', async () => {
    const cuda = new ModelRuntime({ device: 'cuda' });
    try {
      const prompts = seededPrompts(3, 99, 4);
      const outcome = await (async () =>
        sequenceLogits(await cuda.path(ownPath(models.base, 3)), prompts))().catch((e: unknown) => e);
      if (outcome instanceof Error) {
        expect(outcome).toBeInstanceOf(DeviceUnavailableError);
        expect((outcome as DeviceUnavailableError).device).toBe('cuda');
        expect(outcome.message).toMatch(/cuda/i);
      } else {
        const cpu = await sequenceLogits(await runtime.path(ownPath(models.base, 3)), prompts);
        expect(maxDiff(outcome as Float32Array[], cpu)).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await cuda.close();
    }
  });
});
