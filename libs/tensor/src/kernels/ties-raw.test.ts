// TIES from raw bytes (ties-raw.ts, tiesMergeRawParallel) gives the bytes of the kernels it replaces,
// run one after another: decodeDeltas, keepTopKAbs per model, tiesMerge, encodeFloats -- on any split,
// on the one-pass (banded) form and on the three-pass form, with ties at the thresholds, zeros, NaN/Inf.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFloats, encodeFloats, findNonFinite, type FloatDType } from '../dtypes.js';
import { allocShared, WorkerPool, type IndexRange } from '../worker-pool.js';
import { tiesMerge } from './masked-disjoint-mean.js';
import { registerKernels, tiesMergeRawParallel } from './parallel.js';
import { absDigitHistogram, keepTopKAbs, kthLargestAbs } from './radix-select.js';
import { decodeDeltas } from './raw-codec.js';
import { tiesMergeBanded } from './ties-banded-wasm.js';
import { tiesFixupRaw, tiesMergeRaw, tiesRawHistograms, type TiesKeep } from './ties-raw.js';
import { rng } from './random.test-helper.js';

interface Case {
  raw: Uint8Array[];
  dtypes: FloatDType[];
  n: number;
}

const SPECIALS = [0x7fc1, 0x7f80, 0xff80, 0x0000, 0x8000];

/**
 * A base and `models` bf16 models of n elements: base values in a narrow range, each model the base
 * plus one of ~120 steps of its last bits (few distinct deltas: ties at the thresholds) or equal to it (zero
 * deltas), with NaN/Inf/zero bit patterns at rate `special`.
 */
function bf16Case(n: number, models: number, seed: number, special = 0, equalRate = 0.1): Case {
  const random = rng(seed);
  const bits = Array.from({ length: models + 1 }, () => new Uint16Array(new SharedArrayBuffer(2 * n)));
  for (let i = 0; i < n; i++) {
    const b = (0x3c00 + Math.floor(random() * 0x200)) | (random() < 0.5 ? 0x8000 : 0);
    bits[0]![i] = b;
    for (let j = 1; j <= models; j++) {
      const step = random() < equalRate ? 0 : Math.round((random() - 0.5) * 120);
      bits[j]![i] = (b + step) & 0xffff;
    }
  }
  for (const b of bits)
    for (let i = 0; i < n; i++)
      if (random() < special) b[i] = SPECIALS[Math.floor(random() * SPECIALS.length)]!;
  return { raw: bits.map((b) => new Uint8Array(b.buffer)), dtypes: bits.map(() => 'BF16'), n };
}

/** The kernels tiesMergeRaw replaces, one after another (the old whole-tensor path). */
function reference(
  c: Case,
  keep: readonly (number | null)[],
  weights: number[],
  normalize: boolean,
  lambda: number,
  outDtype: FloatDType,
): { bytes: Uint8Array; first: number[] } {
  const values = c.raw.map((r, k) => decodeFloats(c.dtypes[k]!, r, 'F32') as Float32Array);
  const first = values.map((v) => findNonFinite('F32', v));
  const base = values[0]!;
  const deltas = values.slice(1).map((v) => {
    const d = new Float32Array(c.n);
    for (let i = 0; i < c.n; i++) d[i] = v[i]! - base[i]!;
    return d;
  });
  keep.forEach((k, j) => {
    if (k !== null) keepTopKAbs(deltas[j]!, k);
  });
  const out = new Float32Array(c.n);
  tiesMerge({ out, base, deltas, weights, normalize, lambda }, 0, c.n);
  return { bytes: encodeFloats(outDtype, out), first };
}

const sharedBytes = (bytes: number) => new Uint8Array(new SharedArrayBuffer(bytes));
const SIZES: Readonly<Record<FloatDType, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/** The task vectors decodeDeltas leaves (f32), for the histogram checks. */
function deltasOf(c: Case): Float32Array[] {
  const outs = c.raw.map(() => new Float32Array(c.n));
  decodeDeltas({ raw: c.raw, dtypes: c.dtypes, outs, hasBase: true }, 0, c.n);
  return outs.slice(1);
}

describe('ties-raw kernels (one thread)', () => {
  it('tiesRawHistograms = absDigitHistogram of decodeDeltas over any split; band keys in index order', () => {
    const c = bf16Case(20_011, 3, 1, 0.002);
    const deltas = deltasOf(c);
    const cut = 7_777;
    const band = { lo: 0x3a000000, hi: 0x3c800000, fraction: 0.5 };
    const parts = [
      tiesRawHistograms({ ...c, level: 0, prefixes: [0, -1, 0], bands: [band, null, null] }, 0, cut),
      tiesRawHistograms({ ...c, level: 0, prefixes: [0, -1, 0], bands: [band, null, null] }, cut, c.n),
    ];
    for (const j of [0, 2]) {
      const want = absDigitHistogram({ x: deltas[j]!, level: 0, prefix: [] }, 0, c.n);
      const got = new Uint32Array(want.length);
      for (const p of parts) for (let b = 0; b < got.length; b++) got[b]! += p.hists[j]![b]!;
      expect(got).toEqual(want);
    }
    expect(parts[0]!.hists[1]!.length).toBe(0);
    const keys = Array.from(new Uint32Array(deltas[0]!.buffer), (u) => u & 0x7fffffff);
    const inBand = keys.filter((k) => k >= band.lo && k < band.hi);
    expect([...parts[0]!.bandKeys[0]!, ...parts[1]!.bandKeys[0]!]).toEqual(inBand);
    // the first NaN/Inf per input = decodeDeltas'
    const outs = c.raw.map(() => new Float32Array(c.n));
    const want = decodeDeltas({ raw: c.raw, dtypes: c.dtypes, outs, hasBase: true }, 0, cut);
    expect(parts[0]!.first).toEqual(want);

    const prefix = 0x3b80;
    const level1 = tiesRawHistograms({ ...c, level: 1, prefixes: [-1, prefix, -1] }, 3, c.n);
    expect(level1.hists[1]).toEqual(absDigitHistogram({ x: deltas[1]!, level: 1, prefix: [prefix] }, 3, c.n));
  });

  it('tiesMergeRaw over odd splits = the unfused kernels (3 bf16 models and other dtypes / counts)', () => {
    const cases: [Case, FloatDType][] = [
      [bf16Case(9_001, 3, 2, 0.003), 'BF16'],
      [bf16Case(9_001, 2, 3, 0.003), 'F32'],
      [bf16Case(5_003, 4, 4, 0), 'F16'],
    ];
    // one case with f16 and f32 inputs: the generic decode
    const mixed = bf16Case(5_003, 3, 5, 0.002);
    const f32 = sharedBytes(4 * mixed.n);
    f32.set(encodeFloats('F32', decodeFloats('BF16', mixed.raw[1]!, 'F32')));
    const f16 = sharedBytes(2 * mixed.n);
    f16.set(encodeFloats('F16', decodeFloats('BF16', mixed.raw[2]!, 'F32')));
    cases.push([
      { raw: [mixed.raw[0]!, f32, f16, mixed.raw[3]!], dtypes: ['BF16', 'F32', 'F16', 'BF16'], n: mixed.n },
      'BF16',
    ]);
    for (const [c, outDtype] of cases) {
      const models = c.raw.length - 1;
      const deltas = deltasOf(c);
      const ks = Array.from({ length: models }, (_, j) => [Math.floor(c.n * 0.3), null, 0, c.n >> 1][j % 4]!);
      const weights = Array.from({ length: models }, (_, j) => [0.5, 0.3, -0.2, 1][j]!);
      const cuts = [0, 1, 4_000, 4_001, c.n];
      const keepFor = (start: number): TiesKeep[] =>
        ks.map((k, j) => {
          if (k === null) return { kind: 'all' };
          if (k === 0) return { kind: 'none' };
          const sel = kthLargestAbs(deltas[j]!, k);
          const key = new Uint32Array(new Float32Array([sel.value]).buffer)[0]! & 0x7fffffff;
          let equalBefore = 0;
          for (let i = 0; i < start; i++) if (Math.abs(deltas[j]![i]!) === sel.value) equalBefore++;
          return { kind: 'top', key, quota: k - sel.greater, equalBefore };
        });
      for (const normalize of [true, false]) {
        const outRaw = sharedBytes(c.n * SIZES[outDtype]);
        for (let p = 0; p + 1 < cuts.length; p++)
          tiesMergeRaw(
            { ...c, keep: keepFor(cuts[p]!), weights, normalize, lambda: 0.7, outRaw, outDtype },
            cuts[p]!,
            cuts[p + 1]!,
          );
        expect(outRaw).toEqual(reference(c, ks, weights, normalize, 0.7, outDtype).bytes);
      }
    }
  });

  it('tiesMergeBanded decides every element outside the band; tiesFixupRaw completes the rest', () => {
    const c = bf16Case(12_007, 3, 6, 0.002);
    const deltas = deltasOf(c);
    const k = Math.floor(c.n * 0.45);
    const weights = [0.5, 0.3, 0.2];
    const want = reference(c, [k, null, k], weights, true, 1, 'BF16').bytes;
    // a band of whole top bins around each threshold
    const rules = deltas.map((d, j) => {
      if (j === 1) return { kind: 'all' as const };
      const key = new Uint32Array(new Float32Array([kthLargestAbs(d, k).value]).buffer)[0]! & 0x7fffffff;
      return {
        kind: 'band' as const,
        lo: ((key >>> 16) - 1) * 65536,
        hi: ((key >>> 16) + 2) * 65536,
        fraction: 0.6,
      };
    });
    const outRaw = sharedBytes(2 * c.n);
    const cut = 6_001;
    const parts = [
      tiesMergeBanded({ ...c, rules, weights, normalize: true, lambda: 1, outRaw }, 0, cut),
      tiesMergeBanded({ ...c, rules, weights, normalize: true, lambda: 1, outRaw }, cut, c.n),
    ];
    expect(parts.some((p) => p.overflow)).toBe(false);
    const open = new Set(parts.flatMap((p) => Array.from(p.fix)));
    expect(open.size).toBeGreaterThan(0);
    expect(open.size).toBeLessThan(c.n);
    const got16 = new Uint16Array(outRaw.buffer);
    const want16 = new Uint16Array(want.buffer, want.byteOffset, c.n);
    for (let i = 0; i < c.n; i++) if (!open.has(i)) expect(got16[i]).toBe(want16[i]);
    // the open elements, with the exact selections
    for (const [r, start] of [0, cut].entries()) {
      const keep = deltas.map((d, j): TiesKeep => {
        if (j === 1) return { kind: 'all' };
        const sel = kthLargestAbs(d, k);
        const key = new Uint32Array(new Float32Array([sel.value]).buffer)[0]! & 0x7fffffff;
        let equalBefore = 0;
        for (let i = 0; i < start; i++) if (Math.abs(d[i]!) === sel.value) equalBefore++;
        return { kind: 'top', key, quota: k - sel.greater, equalBefore };
      });
      const fix = allocShared(Uint32Array, parts[r]!.fix.length);
      fix.set(parts[r]!.fix);
      tiesFixupRaw({ ...c, keep, weights, normalize: true, lambda: 1, fix, outRaw });
      // from the packed inputs the kernel returned instead of the raw bytes: the same bytes
      const again = sharedBytes(2 * c.n);
      const { packed } = parts[r]!;
      expect(packed.map((v) => v.length)).toEqual([fix.length, fix.length]);
      tiesFixupRaw({ ...c, keep, weights, normalize: true, lambda: 1, fix, packed, outRaw: again });
      const a16 = new Uint16Array(again.buffer);
      for (const i of fix) expect(a16[i]).toBe(got16[i]);
    }
    expect(outRaw).toEqual(want);
  });
});

describe('tiesMergeRawParallel on the worker pool', { timeout: 120_000 }, () => {
  let pool: WorkerPool;
  beforeAll(() => {
    pool = registerKernels(new WorkerPool({ size: 2, minRangeLength: 1000 }));
  });
  afterAll(async () => {
    await pool.close();
  });

  async function check(
    c: Case,
    keep: (number | null)[],
    outDtype: FloatDType,
    parts?: IndexRange[],
    normalize = true,
  ): Promise<void> {
    const weights = keep.map((_, j) => [0.5, 0.3, 0.2, 0.4][j]!);
    const outRaw = sharedBytes(c.n * SIZES[outDtype]);
    const firsts: (readonly number[])[] = [];
    await tiesMergeRawParallel(
      pool,
      c.n,
      { ...c, keep, weights, normalize, lambda: 0.9, outRaw, outDtype, onDecoded: (f) => firsts.push(...f) },
      parts,
    );
    const want = reference(c, keep, weights, normalize, 0.9, outDtype);
    expect(outRaw).toEqual(want.bytes);
    // the first NaN/Inf per input over the ranges, as decodeDeltas reports them
    const got = want.first.map((_, k) => {
      const hits = firsts.map((f) => f[k]!).filter((i) => i >= 0);
      return hits.length === 0 ? -1 : Math.min(...hits);
    });
    expect(got).toEqual(want.first);
  }

  it('three bf16 models (the one-pass form): ties at the thresholds, zeros, NaN/Inf, odd splits', async () => {
    const n = 40_009;
    await check(bf16Case(n, 3, 11), [n >> 1, Math.floor(n * 0.3), Math.floor(n * 0.7)], 'BF16');
    await check(bf16Case(n, 3, 12, 0.001), [n >> 1, null, 0], 'BF16', undefined, false);
    await check(bf16Case(n, 3, 13, 0.001), [Math.floor(n * 0.2), n >> 1, n - 1], 'BF16', [
      { start: 0, end: 1 },
      { start: 1, end: 12_345 },
      { start: 12_345, end: n },
    ]);
  });

  it('falls back to the three-pass form when a sample misleads or a band would be too wide', async () => {
    // the band sample takes every 8th element here: make those small deltas and the rest large
    const n = 8 * 4096;
    const c = bf16Case(n, 3, 14);
    const bits = c.raw.map((r) => new Uint16Array(r.buffer));
    const random = rng(99);
    for (let i = 0; i < n; i++)
      for (let j = 1; j <= 3; j++) {
        const step = i % 8 === 0 ? 1 + Math.floor(random() * 60) : 200 + Math.floor(random() * 200);
        bits[j]![i] = (bits[0]![i]! + step) & 0xffff;
      }
    await check(c, [n >> 1, n >> 2, n >> 1], 'BF16');
    // most deltas zero: the threshold is 0 and a band would hold most of the tensor
    await check(bf16Case(n, 3, 15, 0, 0.8), [n >> 1, n >> 2, Math.floor(n * 0.9)], 'BF16');
  });

  it('other model counts and dtypes (the three-pass form)', async () => {
    const n = 30_011;
    await check(bf16Case(n, 2, 16, 0.001), [n >> 1, Math.floor(n * 0.6)], 'F32');
    await check(bf16Case(n, 4, 17), [n >> 1, null, Math.floor(n * 0.1), n >> 2], 'F16');
    // a small tensor (no sample): the level-0 histogram, then one level-1 pass for every model
    await check(bf16Case(4_001, 3, 18, 0.002), [2_000, 1_000, 3_000], 'BF16');
  });
});
