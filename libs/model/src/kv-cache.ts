/**
 * The KV cache of one batch, layer by layer, grown in place. Entries are position-major,
 * [positions, B, KV, D], so the entries of a step's new tokens are appended at the end of one buffer
 * (no copy of the past per step) and the past is fed to the graph as a view of the buffer's prefix.
 */
import { Tensor } from 'onnxruntime-node';

/** Keys and values of one layer for every position seen so far. */
export class LayerKvCache {
  private keys: Float32Array;
  private values: Float32Array;
  private positions = 0;
  /** Floats per position: B * KV * D. */
  private readonly stride: number;

  constructor(
    readonly batch: number,
    readonly kvHeads: number,
    readonly headDim: number,
    capacity = 0,
  ) {
    this.stride = batch * kvHeads * headDim;
    this.keys = new Float32Array(capacity * this.stride);
    this.values = new Float32Array(capacity * this.stride);
  }

  /** How many positions are cached. */
  get length(): number {
    return this.positions;
  }

  /** The cached keys and values as [P, B, KV, D] tensors (views: valid until the next append). */
  past(): { key: Tensor; value: Tensor } {
    const n = this.positions * this.stride;
    const dims = [this.positions, this.batch, this.kvHeads, this.headDim];
    return {
      key: new Tensor('float32', this.keys.subarray(0, n), dims),
      value: new Tensor('float32', this.values.subarray(0, n), dims),
    };
  }

  /** Appends the entries [S, B, KV, D] of S new positions. */
  append(keys: Float32Array, values: Float32Array): void {
    const added = keys.length / this.stride;
    const needed = (this.positions + added) * this.stride;
    if (needed > this.keys.length) {
      const capacity = Math.max(needed, 2 * this.keys.length);
      this.keys = grow(this.keys, capacity, this.positions * this.stride);
      this.values = grow(this.values, capacity, this.positions * this.stride);
    }
    this.keys.set(keys, this.positions * this.stride);
    this.values.set(values, this.positions * this.stride);
    this.positions += added;
  }
}

function grow(buffer: Float32Array, capacity: number, used: number): Float32Array {
  const out = new Float32Array(capacity);
  out.set(buffer.subarray(0, used));
  return out;
}
