/**
 * What scoring and generation need from a model: a batched forward pass with a KV cache. Both the
 * inference-path runner and the monolithic reference implement it, so one scoring / generation code
 * path serves both.
 */
import type { LayerKvCache } from './kv-cache.js';

/** One forward pass of `batch` rows of `seq` new tokens after `past` cached ones. */
export interface ForwardBatch {
  readonly batch: number;
  readonly seq: number;
  readonly past: number;
  /** [B, S] */
  readonly inputIds: BigInt64Array;
  /** [B, S] */
  readonly positionIds: BigInt64Array;
  /** [B, 1, S, past + S]: 0 where a query may attend a key, a large negative elsewhere. */
  readonly attentionBias: Float32Array;
  /** false when the caller discards the cache after this pass (scoring): the model need not extend it. */
  readonly keepCache?: boolean;
}

/**
 * The KV cache of a batch: one entry per executed layer. forward grows it in place and returns it, so a
 * cache passed to forward must not be passed again (generation threads it from step to step).
 */
export type KvCache = readonly LayerKvCache[];

export interface CausalLM {
  readonly vocabSize: number;
  /** Longest sequence the model attends over exactly (a sliding window), if bounded. */
  readonly maxSequence: number | undefined;
  emptyCache(batch: number): KvCache;
  /** Logits [B, S, V] of the new tokens, and the cache extended by them. */
  forward(input: ForwardBatch, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }>;
}
