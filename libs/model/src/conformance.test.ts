/**
 * Conformance with transformers (PyTorch, fp32, through tools/conformance/model): logits of 20 prompts
 * within 1e-4 for the path runner and the monolithic graph, identical greedy generations, a mixed path
 * (repeats, four models, two affine steps) against a PyTorch re-implementation of the path, and the
 * tokenizer against HF tokenizers. Runs on the random fixture models, and on the zoo once it exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelConfig } from './config.js';
import {
  maxAbsDiff,
  randomModels,
  reference,
  seededPrompts,
  zooModels,
  type RandomModels,
  type ReferenceResult,
} from './fixtures.test-helper.js';
import { generateGreedy, sequenceLogits } from './inference.js';
import { ownPath, type InferencePath } from './inference-path.js';
import { ModelRuntime } from './runtime.js';
import { loadTokenizer } from './tokenizer.js';

const NAMES = ['base', 'translate', 'math', 'code'] as const;
const MAX_NEW_TOKENS = 8;
const TEXTS = [
  'hello, world.',
  'translate (de) der hund = the dog',
  '12 + 30 = 42',
  'def f(x) = x - 2.',
  '"quoted" text, 7',
];

function seededAffine(hidden: number, seed: number): { scale: number[]; shift: number[] } {
  const [a, b] = [
    seededPrompts(1, 1000, seed, hidden, hidden)[0]!,
    seededPrompts(1, 1000, seed + 1, hidden, hidden)[0]!,
  ];
  return { scale: a.map((x) => 0.8 + (0.4 * x) / 1000), shift: b.map((x) => (0.2 * x) / 1000 - 0.1) };
}

/**
 * Max |logit difference| allowed against transformers' fp32 (issue 7: 1e-4), on the random checkpoints
 * and on the trained zoo alike. The graphs round like PyTorch's CPU kernels where the order is ours to
 * choose (RMSNorm's sum, SiLU, RoPE tables; see llama-graph.ts); what is left is the summation order
 * inside the GEMMs (MLAS vs MKL), measured at 2.6e-5..5.6e-5 on the zoo (docs/conformance.md). The zoo
 * run also logs both implementations' distance to transformers' float64 logits and bounds ours by
 * ZOO_FLOAT64_TOLERANCE.
 */
const TOLERANCE = 1e-4;
const ZOO_FLOAT64_TOLERANCE = 2e-4;

interface Tolerance {
  readonly vsFp32: number;
  /** When set, also compare both implementations with transformers' float64 logits. */
  readonly againstFloat64: boolean;
}

function conformance(label: string, getModels: () => Promise<RandomModels>, tolerance: Tolerance): void {
  describe(`conformance with transformers: ${label}`, () => {
    let models: RandomModels;
    let ref: ReferenceResult;
    let prompts: number[][];
    let mixed: InferencePath;
    const runtime = new ModelRuntime();

    beforeAll(async () => {
      models = await getModels();
      const archs = await Promise.all(NAMES.map((n) => readModelConfig(models[n])));
      const vocab = Math.min(...archs.map((a) => a.vocabSize));
      const hidden = archs[0]!.hiddenSize;
      prompts = seededPrompts(20, vocab, 2026);
      const layers = archs.map((a) => a.numLayers);
      mixed = {
        pool: NAMES.map((n) => models[n]),
        steps: [
          { poolIndex: 0, layerIndex: 0 },
          { poolIndex: 2, layerIndex: layers[2]! - 1, affine: seededAffine(hidden, 11) },
          { poolIndex: 1, layerIndex: 0 },
          { poolIndex: 0, layerIndex: 0 },
          { poolIndex: 3, layerIndex: layers[3]! - 1, affine: seededAffine(hidden, 13) },
          { poolIndex: 2, layerIndex: layers[2]! - 1 },
        ],
      };
      ref = await reference({
        models: NAMES.map((n) => models[n]),
        prompts,
        max_new_tokens: MAX_NEW_TOKENS,
        float64_logits: tolerance.againstFloat64,
        paths: [
          {
            pool: mixed.pool,
            steps: mixed.steps.map((s) => ({
              pool_index: s.poolIndex,
              layer_index: s.layerIndex,
              ...(s.affine
                ? { affine: { scale: Array.from(s.affine.scale), shift: Array.from(s.affine.shift) } }
                : {}),
            })),
          },
        ],
        texts: TEXTS,
        tokenizers: [models.base],
      });
    }, 1_800_000);

    afterAll(async () => {
      await runtime.close();
    });

    NAMES.forEach((name, m) => {
      const title = tolerance.againstFloat64
        ? `${name}: path runner and monolithic logits within ${tolerance.vsFp32} of transformers fp32 (and ${ZOO_FLOAT64_TOLERANCE} of float64) on 20 prompts; same greedy generations`
        : `${name}: path runner and monolithic logits within ${tolerance.vsFp32} of transformers on 20 prompts; same greedy generations`;
      it(title, async () => {
        const arch = await readModelConfig(models[name]);
        const pathModel = await runtime.path(ownPath(models[name], arch.numLayers));
        const mono = await runtime.monolithic(models[name]);
        const [ours, monolithic] = [
          await sequenceLogits(pathModel, prompts),
          await sequenceLogits(mono, prompts),
        ];
        const theirs = ref.models[m]!.logits;
        const worst = Math.max(
          ...prompts.map((_, i) =>
            Math.max(maxAbsDiff(ours[i]!, theirs[i]!), maxAbsDiff(monolithic[i]!, theirs[i]!)),
          ),
        );
        console.log(`${name}: max |logit - transformers fp32| ${worst.toExponential(2)}`);
        expect(worst).toBeLessThanOrEqual(tolerance.vsFp32);
        if (tolerance.againstFloat64) {
          const exact = ref.models[m]!.logits64!;
          const errorOf = (logits: readonly (Float32Array | readonly (readonly number[])[])[]) =>
            Math.max(...prompts.map((_, i) => maxAbsDiff(toFloat32(logits[i]!), exact[i]!)));
          const ourError = Math.max(errorOf(ours), errorOf(monolithic));
          console.log(
            `${name}: max |logit - float64| ours ${ourError.toExponential(2)}, transformers fp32 ${errorOf(theirs).toExponential(2)}`,
          );
          expect(ourError).toBeLessThanOrEqual(ZOO_FLOAT64_TOLERANCE);
        }
        const generations = await generateGreedy(pathModel, prompts, {
          maxNewTokens: MAX_NEW_TOKENS,
          eosTokenIds: [],
        });
        expect(generations).toEqual(ref.models[m]!.generations);
        expect(
          await generateGreedy(mono, prompts, { maxNewTokens: MAX_NEW_TOKENS, eosTokenIds: [] }),
        ).toEqual(generations);
        await mono.close();
      });
    });

    it('a mixed path (repeats, four models, two affine steps) matches the PyTorch re-implementation within 1e-4', async () => {
      const pathModel = await runtime.path(mixed);
      const ours = await sequenceLogits(pathModel, prompts);
      const worst = Math.max(...prompts.map((_, i) => maxAbsDiff(ours[i]!, ref.paths[0]!.logits[i]!)));
      expect(worst).toBeLessThanOrEqual(1e-4);
    });

    it('tokenizes and decodes like HF tokenizers', async () => {
      const t = await loadTokenizer(models.base);
      const expected = ref.encodings[models.base]!;
      expect(TEXTS.map((x) => t.encode(x))).toEqual(expected.ids);
      expect(expected.ids.map((ids) => t.decode(ids))).toEqual(expected.decoded);
    });
  });
}

/** A [S, V] reference block as a flat Float32Array (so maxAbsDiff can compare it with float64). */
function toFloat32(block: Float32Array | readonly (readonly number[])[]): Float32Array {
  return block instanceof Float32Array ? block : Float32Array.from(block.flat());
}

conformance('random Llama / Llama+bias / Qwen2 / tied Llama checkpoints', randomModels, {
  vsFp32: TOLERANCE,
  againstFloat64: false,
});
const zoo = zooModels();
if (zoo) conformance('the fixture zoo', async () => zoo, { vsFp32: TOLERANCE, againstFloat64: true });
