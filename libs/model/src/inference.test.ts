import { describe, expect, it } from 'vitest';
import type { CausalLM, ForwardBatch, KvCache } from './causal-lm.js';
import { InvalidModelInputError } from './errors.js';
import { MASKED, attentionBias, generateGreedy, sequenceLogits } from './inference.js';

/** A bigram table model: logits of token t are row t of a fixed table (no attention at all). */
class BigramModel implements CausalLM {
  readonly vocabSize = 5;
  readonly calls: ForwardBatch[] = [];
  constructor(readonly maxSequence: number | undefined) {}
  emptyCache(): KvCache {
    return [];
  }
  forward(input: ForwardBatch, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    this.calls.push(input);
    const logits = new Float32Array(input.batch * input.seq * 5);
    input.inputIds.forEach((t, i) => (logits[i * 5 + ((Number(t) + 1) % 5)] = 1));
    return Promise.resolve({ logits, cache });
  }
}

describe('attentionBias', () => {
  it('lets a query see itself, earlier keys and no padding', () => {
    // batch 2, 2 new tokens after 1 cached; row 1's first key is padding
    const bias = attentionBias(Uint8Array.from([1, 1, 1, 0, 1, 1]), 2, 2, 1);
    expect(Array.from(bias).map((x) => (x === 0 ? 1 : 0))).toEqual([1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1]);
    expect(bias[2]).toBe(Math.fround(MASKED));
  });
});

describe('sequenceLogits / generateGreedy over any CausalLM', () => {
  it('left-pads prompts for generation with positions counted from each prompt start', async () => {
    const m = new BigramModel(undefined);
    const out = await generateGreedy(m, [[1], [3, 4, 0]], { maxNewTokens: 3 });
    expect(out).toEqual([
      [2, 3, 4],
      [1, 2, 3],
    ]);
    expect(Array.from(m.calls[0]!.positionIds, Number)).toEqual([1, 1, 0, 0, 1, 2]);
    expect(Array.from(m.calls[1]!.positionIds, Number)).toEqual([1, 3]);
    expect(m.calls[1]).toMatchObject({ seq: 1, past: 3 });
  });

  it('refuses sequences longer than a sliding window', async () => {
    const m = new BigramModel(4);
    await expect(sequenceLogits(m, [[1, 2, 3, 4, 0]])).rejects.toThrow(InvalidModelInputError);
    await expect(generateGreedy(m, [[1, 2, 3]], { maxNewTokens: 3 })).rejects.toThrow(/sliding window of 4/);
    expect((await sequenceLogits(m, [[1, 2, 3, 4]]))[0]).toHaveLength(20);
  });
});
