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

describe('philox mulhi', () => {
  it('agrees with BigInt arithmetic on the rounds of many counters', () => {
    // The generator is Philox only if every 32x32 -> 64 product is exact: compare a full run of
    // counters with a BigInt transcription of the same rounds.
    const M = [0xd2511f53n, 0xcd9e8d57n];
    const ref = (c: bigint[], k: bigint[]) => {
      let [x0, x1, x2, x3] = c as [bigint, bigint, bigint, bigint];
      let [k0, k1] = k as [bigint, bigint];
      for (let r = 0; r < 10; r++) {
        const p0 = M[0]! * x0;
        const p1 = M[1]! * x2;
        [x0, x1, x2, x3] = [
          ((p1 >> 32n) ^ x1 ^ k0) & 0xffffffffn,
          p1 & 0xffffffffn,
          ((p0 >> 32n) ^ x3 ^ k1) & 0xffffffffn,
          p0 & 0xffffffffn,
        ];
        k0 = (k0 + 0x9e3779b9n) & 0xffffffffn;
        k1 = (k1 + 0xbb67ae85n) & 0xffffffffn;
      }
      return [x0, x1, x2, x3].map(Number);
    };
    const out = new Uint32Array(4);
    for (let i = 0; i < 2000; i++) {
      const c = [i * 2654435761, 0xffffffff - i, i * 40503, 0x80000000 + i].map((v) => v >>> 0);
      philox4x32(c[0]!, c[1]!, c[2]!, c[3]!, 0xdeadbeef, i, out);
      expect(Array.from(out)).toEqual(ref(c.map(BigInt), [0xdeadbeefn, BigInt(i)]));
    }
  });
});
