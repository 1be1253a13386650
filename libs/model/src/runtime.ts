/**
 * The model runtime on onnxruntime-node: one session per graph shape (embedding, decoder layer, head)
 * shared by every path, weights fed as inputs from the shared WeightStore; and the monolithic graph
 * of a single checkpoint, the reference the path runner is held to.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { CausalLM, ForwardBatch, KvCache } from './causal-lm.js';
import { layerGraphKey, type LlamaArchitecture } from './config.js';
import { DeviceUnavailableError } from './errors.js';
import { validatePath, type Affine, type InferencePath } from './inference-path.js';
import {
  buildDecoderLayerGraph,
  buildEmbeddingGraph,
  buildHeadGraph,
  buildMonolithicGraph,
  EMBED_TABLE,
  FINAL_NORM,
  HEAD_T,
  layerTensorSpecs,
  ROPE_COS,
  ROPE_SIN,
  ropeTables,
  type LayerRole,
} from './llama-graph.js';
import { WeightStore, type LayerTensors } from './weights.js';

export type Device = 'cpu' | 'cuda';

export interface RuntimeOptions {
  /** 'cpu' (default) or 'cuda' (onnxruntime's CUDA provider; fails clearly when its libraries are absent). */
  readonly device?: Device;
  /** Threads per operator; default: onnxruntime's (the machine's cores). */
  readonly intraOpThreads?: number;
}

export class ModelRuntime {
  readonly weights = new WeightStore();
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  private readonly options: InferenceSession.SessionOptions;
  readonly device: Device;

  constructor(options: RuntimeOptions = {}) {
    this.device = options.device ?? 'cpu';
    this.options = {
      executionProviders: [this.device],
      graphOptimizationLevel: 'all',
      ...(options.intraOpThreads === undefined ? {} : { intraOpNumThreads: options.intraOpThreads }),
    };
  }

  /** A runner for `path`: validates it against the pool's configs (no weight is read yet). */
  async path(path: InferencePath): Promise<PathModel> {
    const sources = await Promise.all(path.pool.map((dir) => this.weights.source(dir)));
    const head = validatePath(
      path,
      sources.map((s) => s.arch),
    );
    const headArch = sources[head]!.arch;
    const steps = path.steps.map((s) => ({
      dir: sources[s.poolIndex]!.dir,
      layer: s.layerIndex,
      arch: sources[s.poolIndex]!.arch,
      affine:
        s.affine === undefined
          ? undefined
          : { scale: Float32Array.from(s.affine.scale), shift: Float32Array.from(s.affine.shift) },
    }));
    return new PathModel(this, sources[head]!.dir, headArch, steps);
  }

  /** The monolithic whole-model graph of the checkpoint in `dir` (weights embedded as initializers). */
  async monolithic(dir: string): Promise<MonolithicModel> {
    const { arch } = await this.weights.source(dir);
    const head = await this.weights.head(dir);
    const layers = await Promise.all(
      Array.from({ length: arch.numLayers }, (_, l) => this.weights.layer(dir, l)),
    );
    const data = (t: Tensor | undefined) => t!.data as Float32Array;
    const bytes = buildMonolithicGraph(arch, {
      embedTokens: data(head.embedTokens),
      norm: data(head.norm),
      headT: data(head.headT),
      layers: layers.map(
        (l) =>
          Object.fromEntries(Object.entries(l).map(([role, t]) => [role, data(t)])) as Partial<
            Record<LayerRole, Float32Array>
          >,
      ),
    });
    return new MonolithicModel(arch, await this.create(bytes));
  }

  /** @internal A session for a graph, built once per key. */
  session(key: string, build: () => Uint8Array): Promise<InferenceSession> {
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = this.create(build());
      this.sessions.set(key, entry);
      entry.catch(() => this.sessions.delete(key));
    }
    return entry;
  }

  async close(): Promise<void> {
    const sessions = await Promise.allSettled(this.sessions.values());
    await Promise.all(sessions.map((s) => (s.status === 'fulfilled' ? s.value.release() : undefined)));
    this.sessions.clear();
    await this.weights.close();
  }

  private async create(bytes: Uint8Array): Promise<InferenceSession> {
    try {
      return await InferenceSession.create(bytes, this.options);
    } catch (error) {
      if (this.device !== 'cpu') throw new DeviceUnavailableError(this.device, error);
      throw error;
    }
  }
}

interface ResolvedStep {
  readonly dir: string;
  readonly layer: number;
  readonly arch: LlamaArchitecture;
  readonly affine: { readonly scale: Float32Array; readonly shift: Float32Array } | undefined;
}

const attentionBiasFeed = (b: ForwardBatch) => ({
  attention_bias: new Tensor('float32', b.attentionBias, [b.batch, 1, b.seq, b.past + b.seq]),
});

/** RoPE cos/sin feeds of one forward pass, computed once per (head dim, theta) and shared by the layers. */
class RopeFeeds {
  private readonly tables = new Map<string, Record<string, Tensor>>();
  constructor(private readonly batch: ForwardBatch) {}

  for(arch: LlamaArchitecture): Record<string, Tensor> {
    const key = `${arch.headDim}/${arch.ropeTheta}`;
    let feeds = this.tables.get(key);
    if (feeds === undefined) {
      const { batch, seq, positionIds } = this.batch;
      const { cos, sin } = ropeTables(positionIds, arch.headDim, arch.ropeTheta);
      const dims = [batch, 1, seq, arch.headDim];
      feeds = { [ROPE_COS]: new Tensor('float32', cos, dims), [ROPE_SIN]: new Tensor('float32', sin, dims) };
      this.tables.set(key, feeds);
    }
    return feeds;
  }
}

const emptyKv = (arch: LlamaArchitecture, batch: number) =>
  new Tensor('float32', new Float32Array(0), [batch, arch.numKvHeads, 0, arch.headDim]);

/** An inference path over several checkpoints: embedding and head of the head source, layers from anywhere. */
export class PathModel implements CausalLM {
  readonly vocabSize: number;
  readonly maxSequence: number | undefined;

  constructor(
    private readonly runtime: ModelRuntime,
    private readonly headDir: string,
    private readonly headArch: LlamaArchitecture,
    private readonly steps: readonly ResolvedStep[],
  ) {
    this.vocabSize = headArch.vocabSize;
    const windows = steps.map((s) => s.arch.slidingWindow).filter((w): w is number => w !== undefined);
    this.maxSequence = windows.length === 0 ? undefined : Math.min(...windows);
  }

  emptyCache(batch: number): KvCache {
    return this.steps.map((s) => ({ key: emptyKv(s.arch, batch), value: emptyKv(s.arch, batch) }));
  }

  async forward(input: ForwardBatch, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    const { runtime, headArch } = this;
    const head = await runtime.weights.head(this.headDir);
    const embed = await runtime.session(`embedding/${headArch.vocabSize}/${headArch.hiddenSize}`, () =>
      buildEmbeddingGraph(headArch),
    );
    let hidden = (
      await embed.run({
        input_ids: new Tensor('int64', input.inputIds, [input.batch, input.seq]),
        [EMBED_TABLE]: head.embedTokens,
      })
    )['hidden']!;
    const bias = attentionBiasFeed(input);
    const rope = new RopeFeeds(input);
    const next: { key: Tensor; value: Tensor }[] = [];
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i]!;
      const [session, weights] = await Promise.all([
        runtime.session(`layer/${layerGraphKey(step.arch)}`, () => buildDecoderLayerGraph(step.arch)),
        runtime.weights.layer(step.dir, step.layer),
      ]);
      if (step.affine) hidden = applyAffine(hidden, step.affine);
      const out = await session.run({
        hidden,
        ...bias,
        ...rope.for(step.arch),
        past_key: cache[i]!.key,
        past_value: cache[i]!.value,
        ...layerFeeds(step.arch, weights),
      });
      hidden = out['hidden_out']!;
      next.push({ key: out['present_key']!, value: out['present_value']! });
    }
    const headSession = await runtime.session(
      `head/${headArch.hiddenSize}/${headArch.vocabSize}/${headArch.rmsNormEps}`,
      () => buildHeadGraph(headArch),
    );
    const logits = (await headSession.run({ hidden, [FINAL_NORM]: head.norm, [HEAD_T]: head.headT }))[
      'logits'
    ]!;
    return { logits: logits.data as Float32Array, cache: next };
  }
}

function layerFeeds(arch: LlamaArchitecture, weights: LayerTensors): Record<string, Tensor> {
  return Object.fromEntries(layerTensorSpecs(arch).map((s) => [s.role, weights[s.role]!]));
}

/** z' = scale ⊙ z + shift over the last axis, in float32 like PyTorch's `z * scale + shift`. */
export function applyAffine(hidden: Tensor, affine: Affine): Tensor {
  const z = hidden.data as Float32Array;
  const h = affine.scale.length;
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i += h) {
    for (let j = 0; j < h; j++) out[i + j] = Math.fround(z[i + j]! * affine.scale[j]!) + affine.shift[j]!;
  }
  return new Tensor('float32', out, hidden.dims);
}

/** One checkpoint as one ONNX graph with its weights inside: the reference for the path runner. */
export class MonolithicModel implements CausalLM {
  readonly vocabSize: number;
  readonly maxSequence: number | undefined;

  constructor(
    readonly arch: LlamaArchitecture,
    private readonly session: InferenceSession,
  ) {
    this.vocabSize = arch.vocabSize;
    this.maxSequence = arch.slidingWindow;
  }

  emptyCache(batch: number): KvCache {
    return Array.from({ length: this.arch.numLayers }, () => ({
      key: emptyKv(this.arch, batch),
      value: emptyKv(this.arch, batch),
    }));
  }

  async forward(input: ForwardBatch, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', input.inputIds, [input.batch, input.seq]),
      ...attentionBiasFeed(input),
      ...new RopeFeeds(input).for(this.arch),
    };
    cache.forEach((kv, l) => {
      feeds[`past_key_${l}`] = kv.key;
      feeds[`past_value_${l}`] = kv.value;
    });
    const out = await this.session.run(feeds);
    return {
      logits: out['logits']!.data as Float32Array,
      cache: cache.map((_, l) => ({ key: out[`present_key_${l}`]!, value: out[`present_value_${l}`]! })),
    };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
