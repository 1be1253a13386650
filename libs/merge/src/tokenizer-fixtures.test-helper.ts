// Test support for tokenizer merges: tiny random Llama checkpoints whose tokenizer.json is a small BPE
// vocabulary (the shape of the fixture zoo's) with added tokens per model.
import path from 'node:path';
import { CheckpointWriter, type DType } from '@hm3/tensor';
import { architectureFromConfig, expectedTensors } from './architecture.js';
import { gaussian, rng } from './methods/method-harness.test-helper.js';

/** The plain vocabulary every fixture tokenizer starts from: three specials (added tokens), then letters. */
export const BASE_VOCAB = ['<pad>', '<bos>', '<eos>', 'a', 'b', 'c', 'd', 'e', 'f', 'g'];

export interface FixtureAdded {
  readonly content: string;
  readonly special?: boolean;
  readonly normalized?: boolean;
}

export interface FixtureModel {
  /** Added tokens after the plain vocabulary (ids from its end). */
  readonly added?: readonly (string | FixtureAdded)[];
  /** Plain tokens appended to the tokenizer model's vocabulary (before the added tokens). */
  readonly extraVocab?: readonly string[];
  /** Embedding rows (config vocab_size); default: every token of the tokenizer. */
  readonly vocabSize?: number;
  readonly tied?: boolean;
  /** Tensors: random from this seed. */
  readonly seed: number;
  /** Write no tokenizer.json. */
  readonly noTokenizer?: boolean;
  readonly dtype?: DType;
  readonly hidden?: number;
}

export function tokenizerJson(m: Pick<FixtureModel, 'added' | 'extraVocab'>): Record<string, unknown> {
  const plain = [...BASE_VOCAB, ...(m.extraVocab ?? [])];
  const added = [
    ...['<pad>', '<bos>', '<eos>'].map((content, id) => ({ id, content, special: true, normalized: false })),
    ...(m.added ?? []).map((a, i) => {
      const t = typeof a === 'string' ? { content: a } : a;
      return {
        id: plain.length + i,
        content: t.content,
        special: t.special ?? false,
        normalized: t.normalized ?? !(t.special ?? false),
      };
    }),
  ].map((t) => ({
    id: t.id,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: t.normalized,
    special: t.special,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(plain.map((t, i) => [t, i])),
      merges: [],
    },
  };
}

/** Writes the model folder `root/name`; returns its path. */
export async function writeTokenizerModel(root: string, name: string, m: FixtureModel): Promise<string> {
  const dir = path.join(root, name);
  const tok = tokenizerJson(m);
  const tokens = BASE_VOCAB.length + (m.extraVocab?.length ?? 0) + (m.added?.length ?? 0);
  const hidden = m.hidden ?? 8;
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: hidden,
    intermediate_size: 8,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_hidden_layers: 1,
    vocab_size: m.vocabSize ?? tokens,
    tie_word_embeddings: m.tied ?? false,
    torch_dtype: 'float32',
  };
  const specs = expectedTensors(architectureFromConfig(config)).map((t) => ({
    name: t.name,
    dtype: m.dtype ?? ('F32' as DType),
    shape: t.shape,
  }));
  const writer = await CheckpointWriter.create(dir, specs);
  const random = rng(m.seed);
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    await writer.writeFloats(s.name, Float32Array.from(gaussian(n, random, 0.5)));
  }
  await writer.writeFile('config.json', JSON.stringify(config));
  if (!m.noTokenizer) {
    await writer.writeFile('tokenizer.json', JSON.stringify(tok));
    await writer.writeFile(
      'tokenizer_config.json',
      JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<bos>', eos_token: '<eos>' }),
    );
    await writer.writeFile('special_tokens_map.json', JSON.stringify({ bos_token: '<bos>' }));
  }
  await writer.writeFile('generation_config.json', JSON.stringify({ bos_token_id: 1 }));
  await writer.commit();
  return dir;
}
