// Tiny random Llama-shaped checkpoints for the tests (the fixture zoo is trained elsewhere).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { architectureFromConfig, expectedTensors } from '@hm3/merge';
import { CheckpointWriter, type DType } from '@hm3/tensor';

export const TINY_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 16,
  intermediate_size: 24,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 40,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
};

/** A seeded xorshift stream of values in [-0.5, 0.5). */
function random(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296 - 0.5;
  };
}

/** Writes a tiny random model folder `root/name` (config, safetensors, tokenizer file). */
export async function writeTinyModel(
  root: string,
  name: string,
  seed: number,
  dtype: DType = 'BF16',
): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(path.dirname(dir), { recursive: true });
  const next = random(seed);
  const specs = expectedTensors(architectureFromConfig(TINY_CONFIG)).map((t) => ({
    name: t.name,
    dtype,
    shape: t.shape,
  }));
  const writer = await CheckpointWriter.create(dir, specs, { shardBytes: 8000 });
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    await writer.writeFloats(s.name, Float32Array.from({ length: n }, next));
  }
  await writer.writeFile('config.json', JSON.stringify(TINY_CONFIG));
  await writer.writeFile('tokenizer.json', JSON.stringify({ model: name }));
  await writer.commit();
  return dir;
}

export async function writeTokenFile(file: string, token: string): Promise<void> {
  await writeFile(file, `${token}\n`, { mode: 0o600 });
}
