import { describe, expect, it } from 'vitest';
import {
  architectureFromConfig,
  architectureMismatch,
  classifyTensor,
  commonVocabulary,
  expectedTensors,
  isVocabularyTensor,
} from './architecture.js';
import { UnsupportedArchitectureError } from './errors.js';

const llama = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 172,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 3,
  vocab_size: 1000,
  tie_word_embeddings: false,
};

describe('architecture from config.json', () => {
  it('reads Llama: per-layer tensors with their index and shapes, embeddings, head', () => {
    const arch = architectureFromConfig(llama);
    expect(arch).toMatchObject({
      family: 'llama',
      numLayers: 3,
      headDim: 16,
      numKeyValueHeads: 2,
      tieWordEmbeddings: false,
    });
    const tensors = expectedTensors(arch);
    expect(tensors).toHaveLength(1 + 3 * 9 + 2);
    expect(tensors.find((t) => t.name === 'model.layers.2.self_attn.k_proj.weight')).toEqual({
      name: 'model.layers.2.self_attn.k_proj.weight',
      shape: [32, 64],
      role: { kind: 'layer', layerIndex: 2 },
    });
    expect(tensors.at(-1)).toMatchObject({
      name: 'lm_head.weight',
      shape: [1000, 64],
      role: { kind: 'head' },
    });
  });

  it('knows tied embeddings (no lm_head), Qwen2 biases and Mistral', () => {
    const qwen = architectureFromConfig({
      ...llama,
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      tie_word_embeddings: true,
    });
    const names = expectedTensors(qwen).map((t) => t.name);
    expect(names).not.toContain('lm_head.weight');
    expect(names).toContain('model.layers.0.self_attn.q_proj.bias');
    expect(
      architectureFromConfig({ ...llama, model_type: undefined, architectures: ['MistralForCausalLM'] })
        .family,
    ).toBe('mistral');
    expect(architectureMismatch(architectureFromConfig(llama), qwen)).toMatch(/^family/);
  });

  it('refuses other architectures naming model_type / architectures, and missing fields', () => {
    expect(() => architectureFromConfig({ ...llama, model_type: 'gpt2' })).toThrow(
      UnsupportedArchitectureError,
    );
    expect(() => architectureFromConfig({ ...llama, model_type: 'gpt2' })).toThrow(/model_type "gpt2"/);
    expect(() => architectureFromConfig({ architectures: ['BertModel'] }, 'm/config.json')).toThrow(
      /m\/config\.json: .*architectures \["BertModel"\]/,
    );
    expect(() => architectureFromConfig({ ...llama, hidden_size: undefined }, 'x/config.json')).toThrow(
      /x\/config\.json: hidden_size/,
    );
  });

  it('classifies tensor names and crops to the common vocabulary with a warning', () => {
    expect(classifyTensor('model.layers.11.mlp.down_proj.weight')).toEqual({ kind: 'layer', layerIndex: 11 });
    expect(classifyTensor('model.norm.weight').kind).toBe('final_norm');
    expect(isVocabularyTensor('model.embed_tokens.weight')).toBe(true);
    expect(isVocabularyTensor('lm_head.weight')).toBe(true);
    expect(isVocabularyTensor('model.layers.0.input_layernorm.weight')).toBe(false);
    const a = architectureFromConfig(llama);
    const b = architectureFromConfig({ ...llama, vocab_size: 1024 });
    expect(commonVocabulary([a, b])).toEqual({
      vocabSize: 1000,
      warning: expect.stringContaining('cropped to the common 1000'),
    });
    expect(commonVocabulary([a, a]).warning).toBeNull();
  });
});
