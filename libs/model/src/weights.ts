/**
 * Lazily loaded, converted-once weights. A layer (or a head) is read through @hm3/tensor the first
 * time a path needs it, decoded to float32, its Linear weights transposed to [in, out], wrapped as
 * onnxruntime tensors, and shared by every path and every step that uses the same (model, layer).
 */
import path from 'node:path';
import { Checkpoint } from '@hm3/tensor';
import { Tensor } from 'onnxruntime-node';
import { readModelConfig, type LlamaArchitecture } from './config.js';
import { InvalidModelConfigError } from './errors.js';
import { layerTensorSpecs, type LayerRole } from './llama-graph.js';

export interface ModelSource {
  readonly dir: string;
  readonly arch: LlamaArchitecture;
  readonly checkpoint: Checkpoint;
}

export type LayerTensors = Readonly<Partial<Record<LayerRole, Tensor>>>;

export interface HeadTensors {
  /** [V, H] */
  readonly embedTokens: Tensor;
  /** [H] */
  readonly norm: Tensor;
  /** [H, V]: lm_head transposed (the embedding's transpose when tied). */
  readonly headT: Tensor;
}

export class WeightStore {
  private readonly sources = new Map<string, Promise<ModelSource>>();
  private readonly layers = new Map<string, Promise<LayerTensors>>();
  private readonly heads = new Map<string, Promise<HeadTensors>>();
  /** How many layers and heads were read from disk (each once). */
  readonly loads = { layers: 0, heads: 0 };

  /** The config and open checkpoint of the model in `dir` (opened once). */
  source(dir: string): Promise<ModelSource> {
    const key = path.resolve(dir);
    return memo(this.sources, key, async () => {
      const arch = await readModelConfig(key);
      return { dir: key, arch, checkpoint: await Checkpoint.open(key) };
    });
  }

  /** Layer `layer` of the model in `dir`, converted for the decoder-layer graph. */
  layer(dir: string, layer: number): Promise<LayerTensors> {
    const key = `${path.resolve(dir)}#${layer}`;
    return memo(this.layers, key, async () => {
      const { arch, checkpoint } = await this.source(dir);
      const out: Partial<Record<LayerRole, Tensor>> = {};
      for (const spec of layerTensorSpecs(arch)) {
        const values = await readConverted(
          checkpoint,
          `model.layers.${layer}.${spec.hfName}`,
          spec.dims,
          spec.transpose,
        );
        out[spec.role] = new Tensor('float32', values, [...spec.dims]);
      }
      this.loads.layers++;
      return out;
    });
  }

  /** Embedding, final norm and head of the model in `dir`. */
  head(dir: string): Promise<HeadTensors> {
    return memo(this.heads, path.resolve(dir), async () => {
      const { arch, checkpoint } = await this.source(dir);
      const { vocabSize: v, hiddenSize: h } = arch;
      const embed = await readConverted(checkpoint, 'model.embed_tokens.weight', [v, h], false);
      const headName =
        arch.tieWordEmbeddings && !checkpoint.has('lm_head.weight')
          ? 'model.embed_tokens.weight'
          : 'lm_head.weight';
      const headT =
        headName === 'model.embed_tokens.weight'
          ? transpose(embed, v, h)
          : await readConverted(checkpoint, headName, [h, v], true);
      this.loads.heads++;
      return {
        embedTokens: new Tensor('float32', embed, [v, h]),
        norm: new Tensor('float32', await readConverted(checkpoint, 'model.norm.weight', [h], false), [h]),
        headT: new Tensor('float32', headT, [h, v]),
      };
    });
  }

  async close(): Promise<void> {
    const sources = await Promise.allSettled(this.sources.values());
    await Promise.all(
      sources.map((s) => (s.status === 'fulfilled' ? s.value.checkpoint.close() : undefined)),
    );
    this.sources.clear();
    this.layers.clear();
    this.heads.clear();
  }
}

/** Reads `name` as float32 with shape `dims` (or its transpose, which is then undone to `dims`). */
async function readConverted(
  checkpoint: Checkpoint,
  name: string,
  dims: readonly number[],
  transposed: boolean,
): Promise<Float32Array> {
  const stored = transposed ? [dims[1]!, dims[0]!] : [...dims];
  const info = checkpoint.info(name);
  if (info.shape.length !== stored.length || info.shape.some((d, i) => d !== stored[i])) {
    throw new InvalidModelConfigError(
      path.join(checkpoint.dir, 'config.json'),
      name,
      `implies shape [${stored.join(', ')}] but the checkpoint holds [${info.shape.join(', ')}]`,
    );
  }
  const values = await checkpoint.readFloats(name, 'F32');
  return transposed ? transpose(values, stored[0]!, stored[1]!) : values;
}

/** [rows, cols] -> [cols, rows], blocked for cache locality. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const block = 64;
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    for (let c0 = 0; c0 < cols; c0 += block) {
      const c1 = Math.min(cols, c0 + block);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c]!;
      }
    }
  }
  return out;
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let entry = cache.get(key);
  if (!entry) {
    entry = load();
    cache.set(key, entry);
    entry.catch(() => cache.delete(key));
  }
  return entry;
}
