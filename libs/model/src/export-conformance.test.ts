/**
 * Conformance of exported paths with transformers (PyTorch, fp32, through tools/conformance/model):
 * a path stitching layers of several zoo experts, exported by exportPathCheckpoint, loads with
 * AutoModelForCausalLM.from_pretrained and gives our runtime's PathModel logits (of the original
 * path) within 1e-4 on a few prompts; an exported path with affine maps, rebuilt by loadExportedPath,
 * matches the PyTorch re-implementation of the path semantics over the exported folder.
 * Runs on the fixture zoo (tools/fixtures/zoo); without it, on the random base model's own layers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelConfig } from './config.js';
import { exportPathCheckpoint, loadExportedPath } from './export-path.js';
import {
  maxAbsDiff,
  randomModels,
  reference,
  seededPrompts,
  zooModels,
  type ReferenceResult,
} from './fixtures.test-helper.js';
import { generateGreedy, sequenceLogits } from './inference.js';
import type { InferencePath } from './inference-path.js';
import { ModelRuntime } from './runtime.js';

const TOLERANCE = 1e-4;
const PROMPTS = 6;
const MAX_NEW_TOKENS = 4;

function seededAffine(hidden: number, seed: number): { scale: number[]; shift: number[] } {
  const [a, b] = [
    seededPrompts(1, 1000, seed, hidden, hidden)[0]!,
    seededPrompts(1, 1000, seed + 1, hidden, hidden)[0]!,
  ];
  return { scale: a.map((x) => 0.8 + (0.4 * x) / 1000), shift: b.map((x) => (0.2 * x) / 1000 - 0.1) };
}

describe("exported paths load in transformers with our runtime's logits", () => {
  const runtime = new ModelRuntime();
  let work: string;
  let label: string;
  let stitched: InferencePath;
  let withAffine: InferencePath;
  let prompts: number[][];
  let ref: ReferenceResult;
  let exportedPlain: string;
  let exportedAffine: string;
  let loadedAffine: InferencePath;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'hm3-export-conformance-'));
    const zoo = zooModels();
    if (zoo) {
      label = 'the fixture zoo';
      // layers of the base and all three experts, reordered, one repeated; head from expert-math
      stitched = {
        pool: [zoo.base, zoo.translate, zoo.math, zoo.code],
        steps: [
          { poolIndex: 0, layerIndex: 0 },
          { poolIndex: 1, layerIndex: 1 },
          { poolIndex: 2, layerIndex: 2 },
          { poolIndex: 3, layerIndex: 3 },
          { poolIndex: 1, layerIndex: 4 },
          { poolIndex: 2, layerIndex: 5 },
          { poolIndex: 3, layerIndex: 6 },
          { poolIndex: 2, layerIndex: 7 },
          { poolIndex: 2, layerIndex: 7 },
        ],
        headSource: 2,
      };
    } else {
      const random = await randomModels();
      label = 'the random base model (no zoo)';
      stitched = {
        pool: [random.base],
        steps: [2, 0, 1, 1].map((layerIndex) => ({ poolIndex: 0, layerIndex })),
        headSource: 0,
      };
    }
    const head = await readModelConfig(stitched.pool[stitched.headSource ?? 0]!);
    withAffine = {
      ...stitched,
      steps: stitched.steps.map((s, i) =>
        i === 1 || i === 3 ? { ...s, affine: seededAffine(head.hiddenSize, 100 + i) } : s,
      ),
    };
    prompts = seededPrompts(PROMPTS, head.vocabSize, 2027, 3, Math.min(24, head.maxPositionEmbeddings));
    exportedPlain = path.join(work, 'plain');
    exportedAffine = path.join(work, 'affine');
    await exportPathCheckpoint(stitched, exportedPlain);
    await exportPathCheckpoint(withAffine, exportedAffine);
    loadedAffine = await loadExportedPath(exportedAffine);
    ref = await reference({
      models: [exportedPlain],
      prompts,
      max_new_tokens: MAX_NEW_TOKENS,
      paths: [
        {
          pool: loadedAffine.pool,
          head_source: 0,
          steps: loadedAffine.steps.map((s) => ({
            pool_index: s.poolIndex,
            layer_index: s.layerIndex,
            ...(s.affine
              ? { affine: { scale: Array.from(s.affine.scale), shift: Array.from(s.affine.shift) } }
              : {}),
          })),
        },
      ],
    });
  }, 1_800_000);

  afterAll(async () => {
    await runtime.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it(`a stitched path of several models: transformers on the exported folder (f32) within ${TOLERANCE} of our PathModel; same greedy generations`, async () => {
    const model = await runtime.path(stitched);
    const ours = await sequenceLogits(model, prompts);
    const theirs = ref.models[0]!.logits;
    const worst = Math.max(...prompts.map((_, i) => maxAbsDiff(ours[i]!, theirs[i]!)));
    console.info(
      `export conformance (${label}): max |logit diff| vs transformers = ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    expect(await generateGreedy(model, prompts, { maxNewTokens: MAX_NEW_TOKENS, eosTokenIds: [] })).toEqual(
      ref.models[0]!.generations,
    );
    expect(new Set(stitched.pool).size).toBeGreaterThanOrEqual(label === 'the fixture zoo' ? 4 : 1);
  });

  it(`a path with affine maps: loadExportedPath on the exported folder within ${TOLERANCE} of PyTorch's path over it`, async () => {
    const original = await sequenceLogits(await runtime.path(withAffine), prompts);
    const exported = await sequenceLogits(await runtime.path(loadedAffine), prompts);
    const theirs = ref.paths[0]!.logits;
    const worst = Math.max(...prompts.map((_, i) => maxAbsDiff(exported[i]!, theirs[i]!)));
    console.info(
      `export conformance (${label}, affine): max |logit diff| vs PyTorch = ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    original.forEach((o, i) => expect(Array.from(exported[i]!)).toEqual(Array.from(o)));
  });
});
