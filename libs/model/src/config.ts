/**
 * Hugging Face config.json -> the architecture of a Llama-family decoder (Llama, Mistral, Qwen2):
 * RMSNorm, RoPE, grouped-query attention, SwiGLU. Anything the graph builder cannot reproduce
 * exactly is refused with an error naming the field, never approximated.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidModelConfigError, ModelConfigNotFoundError, UnsupportedArchitectureError } from './errors.js';

export type LlamaFamily = 'llama' | 'mistral' | 'qwen2';

/** The shape and numerics of one Llama-family decoder, everything the graph builder needs. */
export interface LlamaArchitecture {
  readonly family: LlamaFamily;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly tieWordEmbeddings: boolean;
  /** Bias on q_proj, k_proj, v_proj. */
  readonly qkvBias: boolean;
  /** Bias on o_proj. */
  readonly oBias: boolean;
  /** Bias on gate_proj, up_proj, down_proj. */
  readonly mlpBias: boolean;
  /** Mistral's sliding attention window (tokens); sequences longer than it are refused. */
  readonly slidingWindow: number | undefined;
  readonly maxPositionEmbeddings: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenIds: readonly number[];
}

const FAMILIES: Readonly<Record<string, { family: LlamaFamily; architecture: string }>> = {
  llama: { family: 'llama', architecture: 'LlamaForCausalLM' },
  mistral: { family: 'mistral', architecture: 'MistralForCausalLM' },
  qwen2: { family: 'qwen2', architecture: 'Qwen2ForCausalLM' },
};

/** Reads `<dir>/config.json`. */
export async function readModelConfig(dir: string): Promise<LlamaArchitecture> {
  const file = path.join(path.resolve(dir), 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelConfigNotFoundError(file);
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidModelConfigError(file, '(root)', `is not valid JSON: ${(error as Error).message}`);
  }
  return parseModelConfig(json, file);
}

/** Maps a parsed config.json to the architecture; `file` names the source in errors. */
export function parseModelConfig(json: unknown, file = 'config.json'): LlamaArchitecture {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new InvalidModelConfigError(file, '(root)', 'must be a JSON object');
  const c = json as Record<string, unknown>;
  const modelType = c['model_type'];
  const known = typeof modelType === 'string' ? FAMILIES[modelType] : undefined;
  if (!known) {
    throw new UnsupportedArchitectureError(
      file,
      'model_type',
      `is ${JSON.stringify(modelType)}; supported: ${Object.keys(FAMILIES).join(', ')}`,
    );
  }
  const architectures = c['architectures'];
  if (architectures !== undefined) {
    if (!Array.isArray(architectures) || !architectures.every((a) => a === known.architecture)) {
      throw new UnsupportedArchitectureError(
        file,
        'architectures',
        `is ${JSON.stringify(architectures)}; model_type ${String(modelType)} runs only [${JSON.stringify(known.architecture)}]`,
      );
    }
  }
  const hiddenAct = c['hidden_act'] ?? 'silu';
  if (hiddenAct !== 'silu')
    throw new UnsupportedArchitectureError(
      file,
      'hidden_act',
      `is ${JSON.stringify(hiddenAct)}; only "silu" (SwiGLU) is built`,
    );
  const ropeScaling = c['rope_scaling'];
  if (ropeScaling !== undefined && ropeScaling !== null) {
    const type =
      (ropeScaling as Record<string, unknown>)['rope_type'] ??
      (ropeScaling as Record<string, unknown>)['type'];
    if (type !== 'default')
      throw new UnsupportedArchitectureError(
        file,
        'rope_scaling',
        `is ${JSON.stringify(ropeScaling)}; only unscaled RoPE is built`,
      );
  }
  if (known.family === 'qwen2' && c['use_sliding_window'] === true) {
    throw new UnsupportedArchitectureError(
      file,
      'use_sliding_window',
      'is true; Qwen2 sliding-window layers are not built',
    );
  }
  for (const field of ['pretraining_tp']) {
    if (c[field] !== undefined && c[field] !== 1)
      throw new UnsupportedArchitectureError(file, field, `is ${JSON.stringify(c[field])}; only 1 is built`);
  }

  const int = (field: string, fallback?: number): number => {
    const v = c[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      throw new InvalidModelConfigError(file, field, `must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const positive = (field: string, fallback: number): number => {
    const v = c[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new InvalidModelConfigError(file, field, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = c[field] ?? fallback;
    if (typeof v !== 'boolean')
      throw new InvalidModelConfigError(file, field, `must be a boolean, got ${JSON.stringify(v)}`);
    return v;
  };
  const optionalId = (field: string): number[] => {
    const v = c[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0))
      throw new InvalidModelConfigError(
        file,
        field,
        `must be a token id or a list of them, got ${JSON.stringify(v)}`,
      );
    return list as number[];
  };

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0)
    throw new InvalidModelConfigError(
      file,
      'num_key_value_heads',
      `(${numKvHeads}) must divide num_attention_heads (${numHeads})`,
    );
  const headDimDefault = hiddenSize / numHeads;
  const headDim =
    c['head_dim'] === undefined || c['head_dim'] === null
      ? Number.isInteger(headDimDefault)
        ? headDimDefault
        : NaN
      : c['head_dim'];
  if (typeof headDim !== 'number' || !Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new InvalidModelConfigError(
      file,
      'head_dim',
      `must be a positive even integer (default hidden_size / num_attention_heads), got ${JSON.stringify(c['head_dim'] ?? headDimDefault)}`,
    );
  }
  const slidingWindowRaw = known.family === 'mistral' ? c['sliding_window'] : undefined;
  let slidingWindow: number | undefined;
  if (slidingWindowRaw !== undefined && slidingWindowRaw !== null) slidingWindow = int('sliding_window');

  const attentionBias = bool('attention_bias', false);
  return {
    family: known.family,
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positive('rms_norm_eps', 1e-6),
    ropeTheta: positive('rope_theta', 10000),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    // Qwen2 always has q/k/v biases and no o bias; Llama's attention_bias covers all four; Mistral has none.
    qkvBias: known.family === 'qwen2' ? true : known.family === 'llama' ? attentionBias : false,
    oBias: known.family === 'llama' ? attentionBias : false,
    mlpBias: known.family === 'llama' ? bool('mlp_bias', false) : false,
    slidingWindow,
    maxPositionEmbeddings: int('max_position_embeddings', 2048),
    bosTokenId: optionalId('bos_token_id')[0],
    eosTokenIds: optionalId('eos_token_id'),
  };
}

/**
 * The fields that decide a decoder layer's graph: layers with equal keys share one ONNX session.
 * rope_theta is not one of them: the RoPE tables are inputs (see ropeTables).
 */
export function layerGraphKey(a: LlamaArchitecture): string {
  return [
    a.hiddenSize,
    a.intermediateSize,
    a.numHeads,
    a.numKvHeads,
    a.headDim,
    a.rmsNormEps,
    a.qkvBias,
    a.oBias,
    a.mlpBias,
  ].join('/');
}
