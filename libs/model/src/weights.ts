/**
 * Lazily loaded, converted weights under a byte budget. A layer (or a head) is read through
 * @hm3/tensor the first time a path needs it, decoded to float32, its Linear weights transposed to
 * [in, out], wrapped as onnxruntime tensors, and shared by every path and every step that uses the
 * same (model, layer) while it is cached.
 *
 * The cache holds at most `maxBytes` of converted weights once no forward pass is running, evicting
 * the least recently used layers and heads first. What a pass in progress still uses is pinned and
 * never evicted (runtime.ts pins the head for the pass and each layer until its last step in the
 * path), so while passes run the cache may hold the budget plus their pinned weights. A layer or head
 * larger than the whole budget still runs: it is loaded for the pass and dropped, not kept, after it.
 * A budget below the weights of the paths being evaluated makes every pass re-read the layers that do
 * not fit (LRU over a cyclic access order keeps none of them): size it to the largest path. The
 * checkpoint files of a model stay open only while some of its weights are cached or loading.
 */
import path from 'node:path';
import { Checkpoint } from '@hm3/tensor';
import { Tensor } from 'onnxruntime-node';
import { readModelConfig, type LlamaArchitecture } from './config.js';
import { InvalidModelConfigError } from './errors.js';
import { layerTensorSpecs, type LayerRole } from './llama-graph.js';
import {
  ByteBudgetCache,
  checkWeightCacheBytes,
  defaultWeightCacheBytes,
  type CacheEntryInfo,
  type Pinned,
} from './weight-cache.js';

export interface ModelSource {
  readonly dir: string;
  readonly arch: LlamaArchitecture;
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

export interface WeightStoreOptions {
  /**
   * Bytes of converted (float32) weights kept once no pass is running; default
   * `defaultWeightCacheBytes()`, a quarter of the process's memory. Infinity: never evict;
   * 0: keep nothing (every pass reads its weights from disk).
   */
  readonly maxBytes?: number;
}

/** Configs kept (a few KB each) for paths being built; the oldest beyond this are read again. */
const MAX_CONFIGS = 256;
const HEAD = 'head';

type Cached = LayerTensors | HeadTensors;

export class WeightStore {
  readonly maxBytes: number;
  private readonly configs = new Map<string, Promise<ModelSource>>();
  private readonly checkpoints = new Map<string, { open: Promise<Checkpoint>; users: number }>();
  private readonly cache: ByteBudgetCache<Cached>;
  /** How many layers and heads were read from disk (a re-read after an eviction counts again). */
  readonly loads = { layers: 0, heads: 0 };

  constructor(options: WeightStoreOptions = {}) {
    this.maxBytes = checkWeightCacheBytes(options.maxBytes ?? defaultWeightCacheBytes(), 'weightCacheBytes');
    this.cache = new ByteBudgetCache<Cached>(this.maxBytes, tensorBytes, (key) =>
      this.unuse(key.slice(0, key.lastIndexOf('#'))),
    );
  }

  /** Bytes of converted weights cached now. */
  get cachedBytes(): number {
    return this.cache.bytes;
  }

  /** Layers and heads dropped to stay within the budget. */
  get evictions(): number {
    return this.cache.evictions;
  }

  /** The cached layers (`<dir>#<layer>`) and heads (`<dir>#head`), least recently used first. */
  entries(): CacheEntryInfo[] {
    return this.cache.list();
  }

  /** Whether layer `layer` (or the head, when omitted) of the model in `dir` is cached now. */
  isCached(dir: string, layer?: number): boolean {
    return this.cache.has(`${path.resolve(dir)}#${layer ?? HEAD}`);
  }

  /** The config of the model in `dir` (no weight is read). */
  source(dir: string): Promise<ModelSource> {
    const key = path.resolve(dir);
    let entry = this.configs.get(key);
    if (entry) {
      this.configs.delete(key);
    } else {
      entry = readModelConfig(key).then((arch) => ({ dir: key, arch }));
      entry.catch(() => this.configs.delete(key));
    }
    this.configs.set(key, entry);
    if (this.configs.size > MAX_CONFIGS) this.configs.delete(this.configs.keys().next().value!);
    return entry;
  }

  /** Layer `layer` of the model in `dir`, converted for the decoder-layer graph (not pinned). */
  async layer(dir: string, layer: number): Promise<LayerTensors> {
    const pinned = await this.acquireLayer(dir, layer);
    pinned.release();
    return pinned.value;
  }

  /** Embedding, final norm and head of the model in `dir` (not pinned). */
  async head(dir: string): Promise<HeadTensors> {
    const pinned = await this.acquireHead(dir);
    pinned.release();
    return pinned.value;
  }

  /** Layer `layer` of the model in `dir`, pinned (never evicted) until released. */
  acquireLayer(dir: string, layer: number): Promise<Pinned<LayerTensors>> {
    const key = path.resolve(dir);
    return this.cache.acquire(`${key}#${layer}`, () =>
      this.withCheckpoint(key, async (arch, checkpoint) => {
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
      }),
    ) as Promise<Pinned<LayerTensors>>;
  }

  /** Embedding, final norm and head of the model in `dir`, pinned until released. */
  acquireHead(dir: string): Promise<Pinned<HeadTensors>> {
    const key = path.resolve(dir);
    return this.cache.acquire(`${key}#${HEAD}`, () =>
      this.withCheckpoint(key, async (arch, checkpoint): Promise<HeadTensors> => {
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
        const norm = await readConverted(checkpoint, 'model.norm.weight', [h], false);
        this.loads.heads++;
        return {
          embedTokens: new Tensor('float32', embed, [v, h]),
          norm: new Tensor('float32', norm, [h]),
          headT: new Tensor('float32', headT, [h, v]),
        };
      }),
    ) as Promise<Pinned<HeadTensors>>;
  }

  /** Drops every cached weight and closes the checkpoints. */
  async close(): Promise<void> {
    this.cache.clear();
    const open = [...this.checkpoints.values()];
    this.checkpoints.clear();
    const checkpoints = await Promise.allSettled(open.map((c) => c.open));
    await Promise.all(checkpoints.map((c) => (c.status === 'fulfilled' ? c.value.close() : undefined)));
    this.configs.clear();
  }

  /**
   * Runs `read` on the open checkpoint of `dir`; the checkpoint counts one more user from now until
   * the cache entry being loaded leaves the cache (`unuse`).
   */
  private async withCheckpoint<T>(
    dir: string,
    read: (arch: LlamaArchitecture, checkpoint: Checkpoint) => Promise<T>,
  ): Promise<T> {
    let handle = this.checkpoints.get(dir);
    if (!handle) {
      handle = { open: Checkpoint.open(dir), users: 0 };
      handle.open.catch(() => undefined); // reported to the loader below
      this.checkpoints.set(dir, handle);
    }
    handle.users++;
    const [{ arch }, checkpoint] = await Promise.all([this.source(dir), handle.open]);
    return read(arch, checkpoint);
  }

  private unuse(dir: string): void {
    const handle = this.checkpoints.get(dir);
    if (!handle || --handle.users > 0) return;
    this.checkpoints.delete(dir);
    void handle.open.then((c) => c.close()).catch(() => undefined); // a failed open was reported to its loader
  }
}

function tensorBytes(value: Cached): number {
  return Object.values(value as Record<string, Tensor | undefined>).reduce(
    (sum, t) => sum + (t === undefined ? 0 : (t.data as Float32Array).byteLength),
    0,
  );
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
