/**
 * A byte-budgeted LRU cache of loaded values with pins. An entry is pinned while someone uses it
 * (`acquire` until `release`): a pinned entry is never evicted, and every acquirer of a key shares
 * the one loaded value. Unpinned entries are evicted least recently used first whenever the cached
 * bytes exceed the budget; an entry larger than the whole budget is kept only while pinned, and its
 * bytes evict nothing else (it is dropped when released anyway). So once nothing is pinned the cached
 * bytes are within the budget; while something is pinned they are at most the budget plus the pinned
 * entries (plus loads in flight, counted once they finish).
 */
import os from 'node:os';
import { InvalidArgumentError } from '@hm3/errors';

/** The share of the process's memory the weight cache may hold by default. */
export const DEFAULT_WEIGHT_CACHE_FRACTION = 0.25;

/**
 * The default weight-cache budget: a quarter of the memory this process may use (the cgroup limit
 * when one is set, as in a Kubernetes pod, else the machine's memory). A quarter, because converted
 * weights are float32 (twice a bf16 checkpoint) and the rest of the process needs the remainder:
 * onnxruntime's arenas and activations, KV caches of batched generation, datasets, and in the embedded
 * mode the merge engine and the policy in the same process. A fraction rather than a fixed size, so a
 * large node keeps a 7B path's layers (about 0.8 GB each in float32) instead of re-reading them on
 * every forward pass.
 */
export function defaultWeightCacheBytes(): number {
  const total = os.totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  // no cgroup limit reads as 0 or as a value beyond any machine (2^64 - 1)
  const limit = constrained > 0 && constrained < total ? constrained : total;
  return Math.floor(limit * DEFAULT_WEIGHT_CACHE_FRACTION);
}

/** Checks a budget setting: a non-negative number of bytes (Infinity: unbounded). */
export function checkWeightCacheBytes(bytes: number, field: string): number {
  if (!(bytes >= 0) || (Number.isFinite(bytes) && !Number.isInteger(bytes))) {
    throw new InvalidArgumentError(`${field}: ${bytes} must be a non-negative whole number of bytes`, {
      field,
    });
  }
  return bytes;
}

/** A value in use: `release` unpins it (once; later calls do nothing). */
export interface Pinned<T> {
  readonly value: T;
  release(): void;
}

export interface CacheEntryInfo {
  readonly key: string;
  readonly bytes: number;
  readonly pins: number;
}

interface Entry<T> {
  readonly key: string;
  readonly promise: Promise<T>;
  bytes: number;
  pins: number;
  loaded: boolean;
}

export class ByteBudgetCache<T> {
  private readonly entries = new Map<string, Entry<T>>(); // insertion order = least recently used first
  private held = 0;
  /** Bytes of loaded entries larger than the budget: held while pinned, never a reason to evict others. */
  private transient = 0;
  /** How many loaded entries were dropped to stay within the budget (or for being larger than it). */
  evictions = 0;

  /**
   * @param maxBytes the budget (Infinity: unbounded; 0: nothing is kept once released)
   * @param sizeOf the bytes a loaded value holds
   * @param onRemove called once when an entry leaves the cache (evicted, failed, or cleared)
   */
  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (value: T) => number,
    private readonly onRemove: (key: string) => void = () => undefined,
  ) {}

  /** Bytes of the loaded entries held now. */
  get bytes(): number {
    return this.held;
  }

  /** The entries, least recently used first. */
  list(): CacheEntryInfo[] {
    return [...this.entries.values()].map(({ key, bytes, pins }) => ({ key, bytes, pins }));
  }

  has(key: string): boolean {
    return this.entries.get(key)?.loaded === true;
  }

  /** The value of `key` (loaded by `load` unless cached or loading), pinned until released. */
  async acquire(key: string, load: () => Promise<T>): Promise<Pinned<T>> {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key); // most recently used: to the end
      this.entries.set(key, entry);
    } else {
      entry = this.start(key, load);
    }
    const held = entry;
    held.pins++; // before any await: neither the load's own insertion nor another acquirer evicts it
    let value: T;
    try {
      value = await held.promise;
    } catch (error) {
      held.pins--;
      throw error;
    }
    let released = false;
    return {
      value,
      release: () => {
        if (released) return;
        released = true;
        held.pins--;
        if (held.pins === 0 && held.bytes > this.maxBytes) this.remove(held, true);
        this.evict();
      },
    };
  }

  /** Drops every entry (pinned ones too: their holders keep their values). */
  clear(): void {
    for (const entry of [...this.entries.values()]) this.remove(entry, false);
  }

  private start(key: string, load: () => Promise<T>): Entry<T> {
    const entry: Entry<T> = {
      key,
      bytes: 0,
      pins: 0,
      loaded: false,
      promise: load().then((value) => {
        if (this.entries.get(key) === entry) {
          entry.bytes = this.sizeOf(value);
          entry.loaded = true;
          this.held += entry.bytes;
          if (entry.bytes > this.maxBytes) this.transient += entry.bytes;
          this.evict();
        }
        return value;
      }),
    };
    this.entries.set(key, entry);
    entry.promise.catch(() => {
      if (this.entries.get(key) === entry) this.remove(entry, false);
    });
    return entry;
  }

  private evict(): void {
    if (this.held - this.transient <= this.maxBytes) return;
    for (const entry of this.entries.values()) {
      if (this.held - this.transient <= this.maxBytes) break;
      if (entry.pins === 0 && entry.loaded) this.remove(entry, true);
    }
  }

  private remove(entry: Entry<T>, evicted: boolean): void {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    if (entry.loaded) this.held -= entry.bytes;
    if (entry.loaded && entry.bytes > this.maxBytes) this.transient -= entry.bytes;
    if (evicted) this.evictions++;
    this.onRemove(entry.key);
  }
}
