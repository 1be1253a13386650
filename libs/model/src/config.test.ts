import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { layerGraphKey, parseModelConfig, readModelConfig } from './config.js';
import { InvalidModelConfigError, ModelConfigNotFoundError, UnsupportedArchitectureError } from './errors.js';

const llama = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  tie_word_embeddings: false,
  attention_bias: false,
  mlp_bias: false,
  hidden_act: 'silu',
  bos_token_id: 1,
  eos_token_id: [2, 3],
};

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { field?: string }).field;
  }
  return undefined;
}

describe('parseModelConfig', () => {
  it('reads a Llama config: GQA, eps, theta, default head_dim, eos list', () => {
    const a = parseModelConfig(llama);
    expect(a).toMatchObject({
      family: 'llama',
      hiddenSize: 4096,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      eosTokenIds: [2, 3],
      bosTokenId: 1,
    });
  });

  it('maps the bias flags of each family', () => {
    expect(parseModelConfig({ ...llama, attention_bias: true, mlp_bias: true })).toMatchObject({
      qkvBias: true,
      oBias: true,
      mlpBias: true,
    });
    const qwen = parseModelConfig({
      ...llama,
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      attention_bias: undefined,
      mlp_bias: undefined,
      use_sliding_window: false,
    });
    expect(qwen).toMatchObject({ family: 'qwen2', qkvBias: true, oBias: false, mlpBias: false });
    const mistral = parseModelConfig({
      ...llama,
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      sliding_window: 4096,
      head_dim: 64,
    });
    expect(mistral).toMatchObject({ family: 'mistral', qkvBias: false, slidingWindow: 4096, headDim: 64 });
  });

  it('defaults num_key_value_heads to the head count, and tie_word_embeddings to false', () => {
    const { num_key_value_heads: _, tie_word_embeddings: __, ...rest } = llama;
    expect(parseModelConfig(rest)).toMatchObject({ numKvHeads: 32, tieWordEmbeddings: false });
  });

  it('refuses other architectures, naming the field', () => {
    expect(() =>
      parseModelConfig({ ...llama, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }, 'x/config.json'),
    ).toThrow(UnsupportedArchitectureError);
    expect(fieldOf(() => parseModelConfig({ ...llama, model_type: 'gpt2' }))).toBe('model_type');
    expect(
      fieldOf(() => parseModelConfig({ ...llama, architectures: ['LlamaForSequenceClassification'] })),
    ).toBe('architectures');
    expect(fieldOf(() => parseModelConfig({ ...llama, hidden_act: 'gelu' }))).toBe('hidden_act');
    expect(
      fieldOf(() => parseModelConfig({ ...llama, rope_scaling: { rope_type: 'llama3', factor: 8 } })),
    ).toBe('rope_scaling');
    expect(
      fieldOf(() =>
        parseModelConfig({
          ...llama,
          model_type: 'qwen2',
          architectures: ['Qwen2ForCausalLM'],
          use_sliding_window: true,
        }),
      ),
    ).toBe('use_sliding_window');
    expect(() => parseModelConfig({ ...llama, model_type: 'gpt2' }, 'x/config.json')).toThrow(
      /x\/config.json.*"model_type"/,
    );
  });

  it('refuses missing or malformed fields, naming them', () => {
    const { hidden_size: _, ...noHidden } = llama;
    expect(() => parseModelConfig(noHidden)).toThrow(InvalidModelConfigError);
    expect(fieldOf(() => parseModelConfig(noHidden))).toBe('hidden_size');
    expect(fieldOf(() => parseModelConfig({ ...llama, num_key_value_heads: 5 }))).toBe('num_key_value_heads');
    expect(fieldOf(() => parseModelConfig({ ...llama, rms_norm_eps: -1 }))).toBe('rms_norm_eps');
    expect(fieldOf(() => parseModelConfig({ ...llama, tie_word_embeddings: 'yes' }))).toBe(
      'tie_word_embeddings',
    );
    expect(fieldOf(() => parseModelConfig({ ...llama, head_dim: 7 }))).toBe('head_dim');
  });

  it('gives layers of equal shape one graph key, different shapes different keys', () => {
    const a = parseModelConfig(llama);
    expect(layerGraphKey(parseModelConfig({ ...llama, num_hidden_layers: 2, vocab_size: 10 }))).toBe(
      layerGraphKey(a),
    );
    expect(layerGraphKey(parseModelConfig({ ...llama, intermediate_size: 1024 }))).not.toBe(layerGraphKey(a));
  });
});

describe('readModelConfig', () => {
  it('fails with ModelConfigNotFoundError on a folder without config.json', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-model-cfg-'));
    try {
      await expect(readModelConfig(dir)).rejects.toThrow(ModelConfigNotFoundError);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
