// The runtime under a weight-cache budget: the same logits as an unbounded runtime, the budget kept
// after every pass, the weights a pass still needs pinned, shared layers converted once while cached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelConfig } from './config.js';
import { randomModels, seededPrompts, type RandomModels } from './fixtures.test-helper.js';
import { generateGreedy, sequenceLogits } from './inference.js';
import { ownPath, type InferencePath } from './inference-path.js';
import { ModelRuntime } from './runtime.js';

let models: RandomModels;
let unbounded: ModelRuntime;
/** Bytes of one converted layer and one head of the 64-wide fixtures. */
let layerBytes: number;
let headBytes: number;

beforeAll(async () => {
  models = await randomModels();
  unbounded = new ModelRuntime({ weightCacheBytes: Infinity, intraOpThreads: 1 });
  await unbounded.weights.layer(models.base, 0);
  await unbounded.weights.head(models.base);
  const sizes = unbounded.weights.entries().map((e) => e.bytes);
  layerBytes = sizes[0]!;
  headBytes = sizes[1]!;
}, 900_000);

afterAll(async () => {
  await unbounded?.close();
});

const mixed = (): InferencePath => ({
  pool: [models.base, models.math, models.code, models.translate],
  steps: [
    { poolIndex: 0, layerIndex: 0 },
    { poolIndex: 1, layerIndex: 1 },
    { poolIndex: 2, layerIndex: 1 },
    { poolIndex: 0, layerIndex: 0 },
    { poolIndex: 3, layerIndex: 1 },
  ],
  headSource: 3,
});

async function logitsOf(rt: ModelRuntime, path: InferencePath): Promise<Float32Array[]> {
  return sequenceLogits(await rt.path(path), seededPrompts(4, 99, 21), 4);
}

describe('the weight-cache budget', () => {
  it('stays within the budget after every pass and gives bit-identical logits after evictions', async () => {
    const budget = 2 * layerBytes + headBytes;
    const rt = new ModelRuntime({ weightCacheBytes: budget, intraOpThreads: 1 });
    try {
      const paths = [
        ...(await Promise.all(
          (['base', 'translate', 'math', 'code'] as const).map(async (m) =>
            ownPath(models[m], (await readModelConfig(models[m])).numLayers),
          ),
        )),
        mixed(),
        ownPath(models.base, 3), // again, after its layers were evicted
      ];
      for (const p of paths) {
        const ours = await logitsOf(rt, p);
        expect(rt.weights.cachedBytes).toBeLessThanOrEqual(budget);
        expect(rt.weights.entries().every((e) => e.pins === 0)).toBe(true);
        expect(ours).toEqual(await logitsOf(unbounded, p)); // bit-identical, not merely close
      }
      expect(rt.weights.evictions).toBeGreaterThan(0);
      expect(rt.weights.loads.layers).toBeGreaterThan(unbounded.weights.loads.layers / 2);
    } finally {
      await rt.close();
    }
  });

  it('runs layers larger than the whole budget: loaded for the pass, not kept', async () => {
    const rt = new ModelRuntime({ weightCacheBytes: layerBytes - 1, intraOpThreads: 1 });
    try {
      const p = ownPath(models.code, 3);
      expect(await logitsOf(rt, p)).toEqual(await logitsOf(unbounded, p));
      expect(rt.weights.cachedBytes).toBeLessThanOrEqual(layerBytes - 1);
      expect([0, 1, 2].some((l) => rt.weights.isCached(models.code, l))).toBe(false);
      expect(rt.weights.isCached(models.code)).toBe(true); // the head fits and is kept
      const generated = await generateGreedy(await rt.path(p), seededPrompts(2, 99, 3), { maxNewTokens: 3 });
      expect(generated).toEqual(
        await generateGreedy(await unbounded.path(p), seededPrompts(2, 99, 3), { maxNewTokens: 3 }),
      );
    } finally {
      await rt.close();
    }
  });

  it('keeps what a pass still uses pinned: a layer repeated later in the path is read once per pass', async () => {
    const rt = new ModelRuntime({ weightCacheBytes: 0, intraOpThreads: 1 });
    try {
      const p = await rt.path({
        pool: [models.base, models.code],
        steps: [
          { poolIndex: 0, layerIndex: 1 },
          { poolIndex: 1, layerIndex: 0 },
          { poolIndex: 1, layerIndex: 2 },
          { poolIndex: 0, layerIndex: 1 },
        ],
        headSource: 0,
      });
      const prompts = seededPrompts(2, 99, 8);
      const first = await sequenceLogits(p, prompts);
      // base#1 stayed pinned across steps 1-2 (budget 0 would drop it otherwise); the head across the pass
      expect(rt.weights.loads).toEqual({ layers: 3, heads: 1 });
      expect(rt.weights.cachedBytes).toBe(0);
      const two = await Promise.all([sequenceLogits(p, prompts), sequenceLogits(p, prompts)]);
      expect(two[0]).toEqual(first);
      expect(two[1]).toEqual(first);
      expect(rt.weights.cachedBytes).toBe(0);
      expect(rt.weights.entries()).toEqual([]);
    } finally {
      await rt.close();
    }
  });

  it('converts a layer shared by two paths once while it is cached', async () => {
    const rt = new ModelRuntime({ weightCacheBytes: 4 * layerBytes + 2 * headBytes, intraOpThreads: 1 });
    try {
      const a = await rt.path({
        pool: [models.base, models.math],
        steps: [
          { poolIndex: 0, layerIndex: 2 },
          { poolIndex: 1, layerIndex: 0 },
        ],
        headSource: 1,
      });
      const b = await rt.path({
        pool: [models.code, models.base],
        steps: [
          { poolIndex: 1, layerIndex: 2 },
          { poolIndex: 0, layerIndex: 1 },
        ],
        headSource: 0,
      });
      const prompts = seededPrompts(3, 99, 5);
      await sequenceLogits(a, prompts);
      const shared = await rt.weights.layer(models.base, 2);
      await sequenceLogits(b, prompts);
      expect(rt.weights.loads).toEqual({ layers: 3, heads: 2 });
      expect(await rt.weights.layer(models.base, 2)).toBe(shared); // the one converted copy
      expect(rt.weights.evictions).toBe(0);
    } finally {
      await rt.close();
    }
  });

  it('refuses a negative budget', () => {
    expect(() => new ModelRuntime({ weightCacheBytes: -1 })).toThrow(/weightCacheBytes/);
  });
});
