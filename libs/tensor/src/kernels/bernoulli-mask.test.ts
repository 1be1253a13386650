import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bernoulliMask } from './bernoulli-mask.js';
import { randomStream } from './philox.js';

describe('bernoulliMask', () => {
  it('gives the same mask for any split of the range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 6 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (n, cuts, seed, density) => {
          const stream = randomStream(seed, 'w');
          const whole = new Uint8Array(n);
          bernoulliMask({ out: whole, stream, density }, 0, n);
          const bounds = [0, ...cuts.map((c) => c % (n + 1)).sort((a, b) => a - b), n];
          const split = new Uint8Array(n);
          for (let j = 0; j + 1 < bounds.length; j++) {
            bernoulliMask({ out: split, stream, density }, bounds[j]!, bounds[j + 1]!);
          }
          expect(split).toEqual(whole);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('gives a row block (indexOffset) the same bits as the whole tensor there', () => {
    const stream = randomStream(5n, 'model.layers.0.mlp.down_proj.weight');
    const n = 1001;
    const whole = new Uint8Array(n);
    bernoulliMask({ out: whole, stream, density: 0.37 }, 0, n);
    for (const [from, to] of [
      [0, 333],
      [333, 334],
      [334, 1001],
      [7, 13],
    ] as const) {
      const block = new Uint8Array(to - from);
      bernoulliMask({ out: block, stream, density: 0.37, indexOffset: from }, 0, to - from);
      expect(block).toEqual(whole.subarray(from, to));
    }
  });

  it('keeps a fraction within the 99.99% binomial interval of the density', () => {
    const n = 200_000;
    for (const density of [0.1, 0.5, 0.9]) {
      const out = new Uint8Array(n);
      bernoulliMask({ out, stream: randomStream(1234n, `t${density}`), density }, 0, n);
      let kept = 0;
      for (const v of out) kept += v;
      const sd = Math.sqrt(n * density * (1 - density));
      expect(Math.abs(kept - n * density)).toBeLessThan(3.9 * sd);
    }
  });

  it('keeps everything at density 1 and nothing at 0; other seeds give other masks', () => {
    const n = 1000;
    const all = new Uint8Array(n);
    bernoulliMask({ out: all, stream: randomStream(1n, 'a'), density: 1 }, 0, n);
    expect(all.every((v) => v === 1)).toBe(true);
    const none = new Uint8Array(n).fill(1);
    bernoulliMask({ out: none, stream: randomStream(1n, 'a'), density: 0 }, 0, n);
    expect(none.every((v) => v === 0)).toBe(true);
    const a = new Uint8Array(n);
    const b = new Uint8Array(n);
    bernoulliMask({ out: a, stream: randomStream(1n, 'a'), density: 0.5 }, 0, n);
    bernoulliMask({ out: b, stream: randomStream(2n, 'a'), density: 0.5 }, 0, n);
    expect(a).not.toEqual(b);
    expect(() => bernoulliMask({ out: a, stream: randomStream(1n, 'a'), density: 1.5 }, 0, n)).toThrow(
      RangeError,
    );
  });
});
