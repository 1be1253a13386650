import { describe, expect, it } from 'vitest';
import { philox4x32, randomStream } from './philox.js';

const hex = (w: Uint32Array) => Array.from(w, (v) => v.toString(16).padStart(8, '0'));

describe('philox4x32-10', () => {
  // Known-answer vectors of Random123 (kat_vectors, philox4x32 R=10).
  it('matches the Random123 known answers', () => {
    const out = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, out);
    expect(hex(out)).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    philox4x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, out);
    expect(hex(out)).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
    expect(hex(out)).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  it('derives distinct streams from distinct names and the key from the seed', () => {
    const a = randomStream(42n, 'model.layers.0.mlp.up_proj.weight\u0000m1');
    const b = randomStream(42n, 'model.layers.0.mlp.up_proj.weight\u0000m2');
    expect([a.stream0, a.stream1]).not.toEqual([b.stream0, b.stream1]);
    const big = randomStream((7n << 32n) | 5n, 'x');
    expect([big.key0, big.key1]).toEqual([5, 7]);
  });
});
