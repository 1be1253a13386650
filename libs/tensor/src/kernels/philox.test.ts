import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bernoulliMask } from './bernoulli-mask.js';
import { mulhi32, philox4x32, randomStream } from './philox.js';

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

describe('mulhi32 (the rounded double product)', () => {
  it('is the high word of the exact product for edge and random operands', () => {
    const u32 = fc.oneof(
      fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xd2511f53, 0xcd9e8d57),
      fc.integer({ min: 0, max: 0xffffffff }),
    );
    fc.assert(
      fc.property(u32, u32, (m, a) => {
        const exact = Number((BigInt(m) * BigInt(a)) >> 32n);
        expect(mulhi32(m, a, Math.imul(m, a) >>> 0)).toBe(exact);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('bernoulliMask = its Philox definition', () => {
  it('keeps element i when word i mod 4 of block floor(i / 4) is below density * 2^32', () => {
    const stream = randomStream(0xfeedfacecafebeefn, 'model.layers.3.self_attn.q_proj.weight\u0000m');
    const n = 4099;
    const offset = 2 ** 33 + 3; // block numbers above 2^32 use counter word 1
    const density = 0.41;
    const mask = new Uint8Array(n);
    bernoulliMask({ out: mask, stream, density, indexOffset: offset }, 0, n);
    const words = new Uint32Array(4);
    for (let i = 0; i < n; i++) {
      const a = offset + i;
      const b = Math.floor(a / 4);
      philox4x32(
        b >>> 0,
        Math.floor(b / 2 ** 32) >>> 0,
        stream.stream0,
        stream.stream1,
        stream.key0,
        stream.key1,
        words,
      );
      expect(mask[i]).toBe(words[a % 4]! < density * 2 ** 32 ? 1 : 0);
    }
  });
});
