// KernelMemory hands out disjoint, aligned shared views of one WebAssembly memory, knows its own views,
// and says no (null) rather than failing when it is out of room or asked for more than wasm can address.
import { describe, expect, it } from 'vitest';
import { KernelMemory } from './kernel-memory.js';

describe('KernelMemory', () => {
  it('allocates aligned, disjoint views until it is full, and knows which views are its own', () => {
    const memory = KernelMemory.create(3 * 65536)!;
    const a = memory.alloc(100)!;
    const b = memory.alloc(65536)!;
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect([a.byteOffset % 64, b.byteOffset % 64]).toEqual([0, 0]);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 100);
    a.fill(1);
    b.fill(2);
    expect(a.every((x) => x === 1)).toBe(true);
    expect(memory.holds(b.subarray(10, 20))).toBe(true);
    expect(memory.holds(new Uint8Array(new SharedArrayBuffer(8)))).toBe(false);
    expect(KernelMemory.create(65536)!.holds(a)).toBe(false);
    expect(memory.alloc(2 * 65536)).toBeNull(); // past the end
    expect(memory.alloc(65536 - 256)).not.toBeNull(); // what is left still fits
    expect(memory.ref.id).not.toBe(KernelMemory.create(65536)!.ref.id);
  });

  it('is null for sizes wasm cannot address', () => {
    expect(KernelMemory.create(0)).toBeNull();
    expect(KernelMemory.create(4 * 1024 ** 3)).toBeNull();
  });
});
