/**
 * The model runtime on onnxruntime-node: one session per graph shape (embedding, decoder layer, head)
 * shared by every path, weights fed as inputs from the shared WeightStore (a byte-budgeted LRU cache:
 * `weightCacheBytes`); and the monolithic graph of a single checkpoint, the reference the path runner
 * is held to.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { CausalLM, ForwardBatch, KvCache } from './causal-lm.js';
import { layerGraphKey, type LlamaArchitecture } from './config.js';
import { DeviceUnavailableError } from './errors.js';
import { LayerKvCache } from './kv-cache.js';
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
import type { Pinned } from './weight-cache.js';
import { WeightStore, type HeadTensors, type LayerTensors } from './weights.js';

export type Device = 'cpu' | 'cuda';

export interface RuntimeOptions {
  /** 'cpu' (default) or 'cuda' (onnxruntime's CUDA provider; fails clearly when its libraries are absent). */
  readonly device?: Device;
  /** Threads per operator; default: onnxruntime's (the machine's cores). */
  readonly intraOpThreads?: number;
  /**
   * Bytes of converted (float32) weights the runtime keeps between forward passes, least recently
   * used evicted first; default a quarter of the process's memory (`defaultWeightCacheBytes`),
   * Infinity: never evict. What a pass in progress uses is never evicted, and a layer larger than
   * the budget still runs (loaded for the pass, not kept); see WeightStore.
   */
  readonly weightCacheBytes?: number;
  /**
   * Flush denormal floats to zero in onnxruntime (its `session.set_denormal_as_zero`); default false.
   * Masked attention scores (the -inf bias) make MLAS's Softmax compute denormal exps, the slow path
   * of x86 float units: flushed, Softmax takes about half the time (batch-32 scoring ~5-10% faster;
   * logits within conformance, denormal values being ~1e-38). Caveat: onnxruntime sets FTZ/DAZ on the
   * thread that creates the session, here Node's main thread, so from then on every float operation
   * of JavaScript on that thread flushes too (a subnormal float32 read from a Float32Array is 0); and
   * onnxruntime applies the main thread's setting once, from the process's FIRST session, so the
   * option only takes effect there when the first runtime to create a session has it. Turn it on
   * only in a process that does no bit-exact float work on its main thread (a scoring evaluator, the
   * bench), not in one that also merges checkpoints there.
   */
  readonly flushDenormals?: boolean;
}

export class ModelRuntime {
  readonly weights: WeightStore;
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  private readonly options: InferenceSession.SessionOptions;
  /** Session config entries (onnxruntime's `extra.session`) of every session. */
  private readonly sessionConfig: Readonly<Record<string, string>>;
  readonly device: Device;
  /** Whether its sessions flush denormals (RuntimeOptions.flushDenormals). */
  readonly flushDenormals: boolean;

  constructor(options: RuntimeOptions = {}) {
    this.device = options.device ?? 'cpu';
    this.flushDenormals = options.flushDenormals === true;
    this.weights = new WeightStore(
      options.weightCacheBytes === undefined ? {} : { maxBytes: options.weightCacheBytes },
    );
    this.sessionConfig = this.flushDenormals ? { set_denormal_as_zero: '1' } : {};
    this.options = {
      executionProviders: [this.device],
      graphOptimizationLevel: 'all',
      extra: { session: this.sessionConfig },
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
    const resolved = path.steps.map((s) => ({
      dir: sources[s.poolIndex]!.dir,
      layer: s.layerIndex,
      arch: sources[s.poolIndex]!.arch,
      affine:
        s.affine === undefined
          ? undefined
          : { scale: Float32Array.from(s.affine.scale), shift: Float32Array.from(s.affine.shift) },
    }));
    const steps = resolved.map((s, i) => ({
      ...s,
      lastUse: !resolved.some((t, j) => j > i && t.dir === s.dir && t.layer === s.layer),
    }));
    return new PathModel(this, sources[head]!.dir, headArch, steps);
  }

  /**
   * The monolithic whole-model graph of the checkpoint in `dir` (weights embedded as initializers).
   * Its session does not pre-pack weights: onnxruntime's CPU MatMul packs a constant (initializer)
   * B once with MLAS's packed K-stride (256), while a B fed as an input (the layer graphs) is packed
   * per call with the unpacked K-stride (128), so any product over more than 128 inputs (the MLP's
   * down projection) sums in another order and the two graphs differed by up to ~4e-5 on the zoo.
   * Without pre-packing both run the same kernel on the same blocks: identical logits.
   */
  async monolithic(dir: string): Promise<MonolithicModel> {
    const { arch } = await this.weights.source(dir);
    // every weight pinned while the graph is built (sequentially: a failed read leaves no pin behind)
    const pins: Pinned<unknown>[] = [];
    let bytes: Uint8Array;
    try {
      const head = await this.weights.acquireHead(dir);
      pins.push(head);
      const layers: LayerTensors[] = [];
      for (let l = 0; l < arch.numLayers; l++) {
        const layer = await this.weights.acquireLayer(dir, l);
        pins.push(layer);
        layers.push(layer.value);
      }
      const data = (t: Tensor | undefined) => t!.data as Float32Array;
      bytes = buildMonolithicGraph(arch, {
        embedTokens: data(head.value.embedTokens),
        norm: data(head.value.norm),
        headT: data(head.value.headT),
        layers: layers.map(
          (l) =>
            Object.fromEntries(Object.entries(l).map(([role, t]) => [role, data(t)])) as Partial<
              Record<LayerRole, Float32Array>
            >,
        ),
      });
    } finally {
      for (const p of pins) p.release();
    }
    return new MonolithicModel(
      arch,
      await this.create(bytes, {
        ...this.options,
        extra: { session: { ...this.sessionConfig, disable_prepacking: '1' } },
      }),
    );
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

  private async create(
    bytes: Uint8Array,
    options: InferenceSession.SessionOptions = this.options,
  ): Promise<InferenceSession> {
    try {
      return await InferenceSession.create(bytes, options);
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
  /** No later step of the path runs this (model, layer): its pin is released after this step. */
  readonly lastUse: boolean;
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
      const { cos, signedSin } = ropeTables(positionIds, arch.headDim, arch.ropeTheta);
      const dims = [batch, 1, seq, arch.headDim];
      feeds = {
        [ROPE_COS]: new Tensor('float32', cos, dims),
        [ROPE_SIN]: new Tensor('float32', signedSin, dims),
      };
      this.tables.set(key, feeds);
    }
    return feeds;
  }
}

const emptyKv = (arch: LlamaArchitecture, batch: number) =>
  new LayerKvCache(batch, arch.numKvHeads, arch.headDim);

/**
 * Runs `session` computing only the output `name` (no other output is copied out). Taken by position:
 * onnxruntime-node 1.23 returns a single fetched output under the name of the graph's first output.
 */
async function runFor(
  session: InferenceSession,
  feeds: InferenceSession.FeedsType,
  name: string,
): Promise<Tensor> {
  const values = Object.values(await session.run(feeds, [name]));
  return values[0] as Tensor;
}

/** Appends a run's new_key / new_value outputs ([S, B, KV, D]) to the layer's cache. */
function appendKv(cache: LayerKvCache, out: InferenceSession.OnnxValueMapType, suffix = ''): void {
  cache.append(
    out[`new_key${suffix}`]!.data as Float32Array,
    out[`new_value${suffix}`]!.data as Float32Array,
  );
}

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
    return this.steps.map((s) => emptyKv(s.arch, batch));
  }

  async forward(input: ForwardBatch, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    const keep = input.keepCache !== false;
    // Pinned for this pass: the head until the logits, each layer until its last step in the path.
    const headPin = await this.runtime.weights.acquireHead(this.headDir);
    const layerPins = new Map<string, Pinned<LayerTensors>>();
    try {
      return await this.run(input, cache, keep, headPin.value, layerPins);
    } finally {
      headPin.release();
      for (const p of layerPins.values()) p.release();
    }
  }

  private async run(
    input: ForwardBatch,
    cache: KvCache,
    keep: boolean,
    head: HeadTensors,
    layerPins: Map<string, Pinned<LayerTensors>>,
  ): Promise<{ logits: Float32Array; cache: KvCache }> {
    const { runtime, headArch } = this;
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
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i]!;
      // no past and nothing to keep (scoring): the layer graph without cache inputs and outputs
      const cached = keep || cache[i]!.length > 0;
      const key = `${cached ? 'layer' : 'layer-no-cache'}/${layerGraphKey(step.arch)}`;
      const weightKey = `${step.dir}#${step.layer}`;
      let pinned = layerPins.get(weightKey);
      if (pinned === undefined) {
        pinned = await runtime.weights.acquireLayer(step.dir, step.layer);
        layerPins.set(weightKey, pinned);
      }
      const session = await runtime.session(key, () => buildDecoderLayerGraph(step.arch, { cache: cached }));
      const weights = pinned.value;
      if (step.affine) hidden = applyAffine(hidden, step.affine);
      const feeds: Record<string, Tensor> = {
        hidden,
        ...bias,
        ...rope.for(step.arch),
        ...layerFeeds(step.arch, weights),
      };
      if (cached) {
        const past = cache[i]!.past();
        feeds['past_key'] = past.key;
        feeds['past_value'] = past.value;
      }
      if (keep) {
        const out = await session.run(feeds);
        hidden = out['hidden_out']!;
        appendKv(cache[i]!, out);
      } else {
        hidden = await runFor(session, feeds, 'hidden_out');
      }
      if (step.lastUse) {
        layerPins.delete(weightKey);
        pinned.release();
      }
    }
    const headSession = await runtime.session(
      `head/${headArch.hiddenSize}/${headArch.vocabSize}/${headArch.rmsNormEps}`,
      () => buildHeadGraph(headArch),
    );
    const logits = (await headSession.run({ hidden, [FINAL_NORM]: head.norm, [HEAD_T]: head.headT }))[
      'logits'
    ]!;
    return { logits: logits.data as Float32Array, cache };
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
    return Array.from({ length: this.arch.numLayers }, () => emptyKv(this.arch, batch));
  }

  async forward(input: ForwardBatch, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', input.inputIds, [input.batch, input.seq]),
      ...attentionBiasFeed(input),
      ...new RopeFeeds(input).for(this.arch),
    };
    cache.forEach((kv, l) => {
      const past = kv.past();
      feeds[`past_key_${l}`] = past.key;
      feeds[`past_value_${l}`] = past.value;
    });
    if (input.keepCache === false)
      return { logits: (await runFor(this.session, feeds, 'logits')).data as Float32Array, cache };
    const out = await this.session.run(feeds);
    cache.forEach((kv, l) => appendKv(kv, out, `_${l}`));
    return { logits: out['logits']!.data as Float32Array, cache };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
