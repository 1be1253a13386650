/**
 * Architecture awareness from a Hugging Face config.json (Llama, Mistral, Qwen2): the tensors a
 * checkpoint must hold with their shapes, which are per-layer (and their layer index, for gradients),
 * embeddings, head, tied embeddings; and cropping to a common vocabulary.
 */
import { UnsupportedArchitectureError } from './errors.js';

export type ArchitectureFamily = 'llama' | 'mistral' | 'qwen2';

/** What a tensor is to the merge. */
export type TensorRole =
  | { readonly kind: 'embedding'; readonly layerIndex: null }
  | { readonly kind: 'layer'; readonly layerIndex: number }
  | { readonly kind: 'final_norm'; readonly layerIndex: null }
  | { readonly kind: 'head'; readonly layerIndex: null }
  | { readonly kind: 'other'; readonly layerIndex: null };

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: TensorRole;
}

export interface Architecture {
  readonly family: ArchitectureFamily;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  /** lm_head shares embed_tokens (no lm_head.weight in the checkpoint). */
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2; Llama with attention_bias). */
  readonly attentionBias: boolean;
  readonly mlpBias: boolean;
}

const FAMILY_BY_MODEL_TYPE: Readonly<Record<string, ArchitectureFamily>> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
};
const FAMILY_BY_CLASS: Readonly<Record<string, ArchitectureFamily>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};

function positiveInt(
  config: Record<string, unknown>,
  field: string,
  file: string,
  fallback?: number,
): number {
  const v = config[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new UnsupportedArchitectureError(
      `${file}: ${field} must be a positive integer (got ${JSON.stringify(config[field])})`,
      {
        file,
        field,
      },
    );
  }
  return v;
}

/** Reads a config.json (parsed); an architecture other than Llama, Mistral, Qwen2 is an error naming model_type / architectures. */
export function architectureFromConfig(config: unknown, file = 'config.json'): Architecture {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new UnsupportedArchitectureError(`${file}: not a JSON object`, { file });
  }
  const c = config as Record<string, unknown>;
  const modelType = typeof c['model_type'] === 'string' ? c['model_type'] : undefined;
  const classes = Array.isArray(c['architectures'])
    ? c['architectures'].filter((a): a is string => typeof a === 'string')
    : [];
  let family = modelType === undefined ? undefined : FAMILY_BY_MODEL_TYPE[modelType];
  if (family === undefined && modelType === undefined)
    family = classes.map((a) => FAMILY_BY_CLASS[a]).find((f) => f !== undefined);
  if (family === undefined) {
    throw new UnsupportedArchitectureError(
      `${file}: unsupported architecture (model_type ${JSON.stringify(modelType ?? null)}, architectures ${JSON.stringify(classes)}); ` +
        `supported: model_type llama, mistral, qwen2`,
      {
        file,
        field: modelType === undefined ? 'architectures' : 'model_type',
        modelType,
        architectures: classes,
      },
    );
  }
  const hiddenSize = positiveInt(c, 'hidden_size', file);
  const numAttentionHeads = positiveInt(c, 'num_attention_heads', file);
  const headDimDefault = hiddenSize % numAttentionHeads === 0 ? hiddenSize / numAttentionHeads : undefined;
  const headDim = c['head_dim'] === null ? headDimDefault : c['head_dim'];
  return {
    family,
    numLayers: positiveInt(c, 'num_hidden_layers', file),
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size', file),
    numAttentionHeads,
    numKeyValueHeads: positiveInt(c, 'num_key_value_heads', file, numAttentionHeads),
    headDim: positiveInt({ head_dim: headDim ?? headDimDefault }, 'head_dim', file),
    vocabSize: positiveInt(c, 'vocab_size', file),
    tieWordEmbeddings: c['tie_word_embeddings'] === true,
    attentionBias: family === 'qwen2' || c['attention_bias'] === true,
    mlpBias: family !== 'qwen2' && c['mlp_bias'] === true,
  };
}

const LAYER_RE = /^model\.layers\.(\d+)\./;

/** The role of a tensor by name (the Llama-family layout, shared by Mistral and Qwen2). */
export function classifyTensor(name: string): TensorRole {
  const m = LAYER_RE.exec(name);
  if (m !== null) return { kind: 'layer', layerIndex: Number(m[1]) };
  if (name === 'model.embed_tokens.weight') return { kind: 'embedding', layerIndex: null };
  if (name === 'lm_head.weight') return { kind: 'head', layerIndex: null };
  if (name === 'model.norm.weight') return { kind: 'final_norm', layerIndex: null };
  return { kind: 'other', layerIndex: null };
}

/** A tensor whose first dimension is the vocabulary (cropped to the common vocabulary). */
export function isVocabularyTensor(name: string): boolean {
  const kind = classifyTensor(name).kind;
  return kind === 'embedding' || kind === 'head';
}

/** Every tensor the checkpoint of this architecture holds, in order, with its shape (vocabSize may be overridden). */
export function expectedTensors(arch: Architecture, vocabSize = arch.vocabSize): TensorSpec[] {
  const h = arch.hiddenSize;
  const q = arch.numAttentionHeads * arch.headDim;
  const kv = arch.numKeyValueHeads * arch.headDim;
  const out: TensorSpec[] = [
    {
      name: 'model.embed_tokens.weight',
      shape: [vocabSize, h],
      role: classifyTensor('model.embed_tokens.weight'),
    },
  ];
  for (let i = 0; i < arch.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const add = (suffix: string, shape: number[]) =>
      out.push({ name: p + suffix, shape, role: { kind: 'layer', layerIndex: i } });
    add('input_layernorm.weight', [h]);
    add('self_attn.q_proj.weight', [q, h]);
    add('self_attn.k_proj.weight', [kv, h]);
    add('self_attn.v_proj.weight', [kv, h]);
    if (arch.attentionBias) {
      add('self_attn.q_proj.bias', [q]);
      add('self_attn.k_proj.bias', [kv]);
      add('self_attn.v_proj.bias', [kv]);
    }
    add('self_attn.o_proj.weight', [h, q]);
    if (arch.family === 'llama' && arch.attentionBias) add('self_attn.o_proj.bias', [h]);
    add('post_attention_layernorm.weight', [h]);
    add('mlp.gate_proj.weight', [arch.intermediateSize, h]);
    add('mlp.up_proj.weight', [arch.intermediateSize, h]);
    add('mlp.down_proj.weight', [h, arch.intermediateSize]);
    if (arch.mlpBias) {
      add('mlp.gate_proj.bias', [arch.intermediateSize]);
      add('mlp.up_proj.bias', [arch.intermediateSize]);
      add('mlp.down_proj.bias', [h]);
    }
  }
  out.push({ name: 'model.norm.weight', shape: [h], role: classifyTensor('model.norm.weight') });
  if (!arch.tieWordEmbeddings)
    out.push({ name: 'lm_head.weight', shape: [vocabSize, h], role: classifyTensor('lm_head.weight') });
  return out;
}

/** Fields two architectures must share to be merged tensor by tensor (everything but the vocabulary). */
const SHAPE_FIELDS = [
  'family',
  'numLayers',
  'hiddenSize',
  'intermediateSize',
  'numAttentionHeads',
  'numKeyValueHeads',
  'headDim',
  'attentionBias',
  'mlpBias',
] as const;

/** The first field where two architectures differ (vocabulary aside), or null. */
export function architectureMismatch(a: Architecture, b: Architecture): string | null {
  for (const f of SHAPE_FIELDS) if (a[f] !== b[f]) return `${f}: ${String(a[f])} vs ${String(b[f])}`;
  return null;
}

/**
 * The vocabulary every model shares: the smallest vocab_size. Embeddings and head are cropped to it
 * (mergekit's default without tokenizer_source); `warning` says so when the sizes differ.
 */
export function commonVocabulary(archs: readonly Architecture[]): {
  vocabSize: number;
  warning: string | null;
} {
  const sizes = archs.map((a) => a.vocabSize);
  const vocabSize = Math.min(...sizes);
  const differ = sizes.some((s) => s !== vocabSize);
  return {
    vocabSize,
    warning: differ
      ? `vocabulary sizes differ (${sizes.join(', ')}); embeddings and head are cropped to the common ${vocabSize} rows`
      : null,
  };
}
