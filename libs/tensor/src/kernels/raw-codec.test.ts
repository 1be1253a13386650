// The whole-tensor hot path's fused kernels give the bytes of the kernels they replace, for any split.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bf16ToFloat, decodeFloats, encodeFloats, floatToBf16 } from '../dtypes.js';
import { allocShared, WorkerPool } from '../worker-pool.js';
import { axpy } from './axpy.js';
import { bernoulliMask, dareMaskSums, L1_CHUNK } from './bernoulli-mask.js';
import { tiesMerge } from './masked-disjoint-mean.js';
import { chunkAlignedRanges, registerKernels } from './parallel.js';
import { randomStream } from './philox.js';
import { decodeDeltas, encodeRange } from './raw-codec.js';
import { absSumBoth, absSumBothChunked, absSumChunks, addChunkSums, applyMask } from './reductions.js';

/** bf16 bit patterns: finite values of every exponent and both signs, zeros, and (rarely) NaN/Inf. */
const bf16Bits = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 0, max: 0xffff }).filter((h) => (h & 0x7f80) !== 0x7f80) },
  { weight: 1, arbitrary: fc.constantFrom(0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc1) },
);

const u8 = (a: Uint16Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('raw-codec kernels', () => {
  it('decodeDeltas = decode every input, then axpy(x - base); first NaN/Inf per input', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 80 })
          .chain((n) =>
            fc.array(fc.array(bf16Bits, { minLength: n, maxLength: n }), { minLength: 2, maxLength: 4 }),
          ),
        fc.integer({ min: 0, max: 80 }),
        (inputs, cut) => {
          const n = inputs[0]!.length;
          const raw = inputs.map((xs) => u8(Uint16Array.from(xs)));
          const want = inputs.map((xs) => bf16ToFloat(Uint16Array.from(xs), new Float32Array(n)));
          for (let k = 1; k < want.length; k++) axpy({ y: want[k]!, x: want[0]!, alpha: -1 }, 0, n);
          const outs = inputs.map(() => new Float32Array(n));
          const c = cut % (n + 1);
          const args = { raw, dtypes: inputs.map(() => 'BF16' as const), outs, hasBase: true };
          const a = decodeDeltas(args, 0, c);
          const b = decodeDeltas(args, c, n);
          for (let k = 0; k < inputs.length; k++) {
            expect(u8(outs[k]!)).toEqual(u8(want[k]!));
            const bad = inputs[k]!.findIndex((h) => (h & 0x7f80) === 0x7f80);
            expect(a[k]! >= 0 ? a[k] : b[k]).toBe(bad);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('decodeDeltas decodes other dtypes through decodeFloats, and into f64', () => {
    const values = Float32Array.from([1.5, -2.25, 3, 0.125, -0]);
    const raw = [u8(values), u8(Float32Array.from([2, 2, 2, 2, 2]))];
    const outs = [new Float64Array(5), new Float64Array(5)];
    expect(decodeDeltas({ raw, dtypes: ['F32', 'F32'], outs, hasBase: true }, 0, 5)).toEqual([-1, -1]);
    expect(Array.from(outs[0]!)).toEqual(Array.from(decodeFloats('F32', raw[0]!, 'F64')));
    expect(Array.from(outs[1]!)).toEqual([0.5, 4.25, -1, 1.875, 2]);
  });

  it('encodeRange over any split = encodeFloats of the whole', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3.7);
    const whole = floatToBf16(x, new Uint16Array(1000));
    const out = new Uint8Array(2000);
    for (const [a, b] of [
      [0, 1],
      [1, 333],
      [333, 1000],
    ] as const)
      encodeRange({ x, dtype: 'BF16', out }, a, b);
    expect(out).toEqual(u8(whole));
    expect(encodeFloats('BF16', x)).toEqual(out);
  });

  it('dareMaskSums = bernoulliMask, the chunked L1 sums, applyMask with scale 1', () => {
    const n = 2 * L1_CHUNK + 12_345;
    const stream = randomStream(99n, 'w\u0000m');
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * ((i % 13) - 6));
    const keep = new Uint8Array(n);
    bernoulliMask({ out: keep, stream, density: 0.3, indexOffset: 5 }, 0, n);
    const [all, kept] = absSumBothChunked({ x, mask: keep });
    const want = x.slice();
    applyMask({ x: want, mask: keep, scale: 1 }, 0, n);

    const got = x.slice();
    const gotKeep = new Uint8Array(n);
    const sums = new Float64Array(2 * Math.ceil(n / L1_CHUNK));
    for (const r of chunkAlignedRanges(n, 2, L1_CHUNK))
      dareMaskSums({ x: got, keep: gotKeep, stream, density: 0.3, indexOffset: 5, sums }, r.start, r.end);
    expect(gotKeep).toEqual(keep);
    expect(u8(got)).toEqual(u8(want));
    expect(addChunkSums(sums)).toEqual([all, kept]);
    // the chunked sums are the plain sums up to rounding
    const [plainAll, plainKept] = absSumBoth({ x, mask: keep }, 0, n);
    expect(all).toBeCloseTo(plainAll, 6);
    expect(kept).toBeCloseTo(plainKept, 6);
    expect(() => dareMaskSums({ x, keep, stream, density: 0.3, sums }, 1, n)).toThrow(/multiple/);
  });

  it('absSumChunks over chunk-aligned ranges = absSumBothChunked', () => {
    const n = 3 * L1_CHUNK + 7;
    const x = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11) * 1e-3);
    const mask = Uint8Array.from({ length: n }, (_, i) => ((i * 7919) % 3 === 0 ? 1 : 0));
    for (const parts of [1, 2, 3, 8]) {
      const sums = new Float64Array(2 * Math.ceil(n / L1_CHUNK));
      for (const r of chunkAlignedRanges(n, parts, L1_CHUNK)) absSumChunks({ x, mask, sums }, r.start, r.end);
      expect(addChunkSums(sums)).toEqual(absSumBothChunked({ x, mask }));
    }
  });

  it("tiesMerge's scales = applyMask(scale) on the deltas first", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 2, max: 4 }),
        fc.array(fc.double({ min: 0.1, max: 4, noNaN: true }), { minLength: 4, maxLength: 4 }),
        fc.boolean(),
        fc.constantFrom('f32', 'f64'),
        (n, k, scales, normalize, kind) => {
          const make = (f: (i: number) => number) =>
            kind === 'f32'
              ? Float32Array.from({ length: n }, (_, i) => f(i))
              : Float64Array.from({ length: n }, (_, i) => f(i));
          const base = make((i) => Math.sin(i));
          const deltas = Array.from({ length: k }, (_, j) =>
            make((i) => ((i + j) % 3 === 0 ? 0 : Math.cos(i * (j + 1)) / 7)),
          );
          const weights = Array.from({ length: k }, (_, j) => 0.5 - j * 0.2);
          const s = scales.slice(0, k);
          const scaled = deltas.map((d, j) => {
            const c = d.slice();
            applyMask({ x: c, mask: new Uint8Array(n).fill(1), scale: s[j]! }, 0, n);
            return c;
          });
          const want = make(() => 0);
          tiesMerge({ out: want, base, deltas: scaled, weights, normalize, lambda: 0.9 }, 0, n);
          const got = make(() => 0);
          tiesMerge({ out: got, base, deltas, weights, normalize, lambda: 0.9, scales: s }, 0, n);
          expect(Array.from(got)).toEqual(Array.from(want));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('raw-codec kernels on the worker pool', { timeout: 120_000 }, () => {
  let pool: WorkerPool;
  beforeAll(() => {
    pool = registerKernels(new WorkerPool({ size: 2, minRangeLength: 1000 }));
  });
  afterAll(async () => {
    await pool.close();
  });

  it('decodeDeltas, dareMaskSums and encodeRange on two workers = on this thread', async () => {
    const n = L1_CHUNK + 40_001;
    const bits = [0, 1].map((k) => {
      const b = new Uint16Array(new SharedArrayBuffer(2 * n));
      for (let i = 0; i < n; i++)
        b[i] = (0x3c00 + ((i * (k + 3) * 2654435761) >>> 20)) ^ (i % 2 ? 0x8000 : 0);
      return b;
    });
    const raw = bits.map(u8);
    const outs = [allocShared(Float32Array, n), allocShared(Float32Array, n)];
    const firsts = await pool.run<number[]>(
      'decodeDeltas',
      { raw, dtypes: ['BF16', 'BF16'], outs, hasBase: true },
      n,
    );
    expect(firsts.flat().every((f) => f === -1)).toBe(true);
    const local = [new Float32Array(n), new Float32Array(n)];
    decodeDeltas({ raw, dtypes: ['BF16', 'BF16'], outs: local, hasBase: true }, 0, n);
    expect(u8(outs[1]!)).toEqual(u8(local[1]!));

    const stream = randomStream(3n, 'x');
    const keep = new Uint8Array(new SharedArrayBuffer(n));
    const sums = allocShared(Float64Array, 2 * Math.ceil(n / L1_CHUNK));
    await pool.run(
      'dareMaskSums',
      { x: outs[1]!, keep, stream, density: 0.6, sums },
      chunkAlignedRanges(n, 2, L1_CHUNK),
    );
    const localSums = new Float64Array(sums.length);
    dareMaskSums({ x: local[1]!, keep: new Uint8Array(n), stream, density: 0.6, sums: localSums }, 0, n);
    expect(u8(outs[1]!)).toEqual(u8(local[1]!));
    expect(Array.from(sums)).toEqual(Array.from(localSums));

    const out = new Uint8Array(new SharedArrayBuffer(2 * n));
    await pool.run('encodeRange', { x: outs[1]!, dtype: 'BF16', out }, n);
    expect(out).toEqual(encodeFloats('BF16', local[1]!));
  });
});
