// The WebAssembly SIMD tiesMergeBanded gives the JS kernel's result in every field (bytes, above,
// keys, bandBins, fix, overflow, first) on random bf16 inputs: ties at the band edges, zeros of both
// signs, subnormals, values whose deltas overflow, NaN/Inf in each input, 'all' / 'none' / 'band'
// rules mixed, normalize on and off, odd ranges and list overflow.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WorkerPool } from '../worker-pool.js';
import {
  tiesBandedBackend,
  tiesBandedStats,
  tiesFixup,
  tiesFixupWasm,
  tiesMergeBanded,
  tiesMergeBandedWasm,
} from './ties-banded-wasm.js';
import {
  tiesFixupRaw,
  tiesMergeBandedJs,
  type TiesBandRule,
  type TiesKeep,
  type TiesMergeBandedArgs,
  type TiesMergeBandedResult,
} from './ties-raw.js';
import { KernelMemory } from './kernel-memory.js';
import { rng } from './random.test-helper.js';

// The WebAssembly API as used here (the workspace's TypeScript libs declare no WebAssembly global).
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => {
    readonly buffer: ArrayBuffer;
  };
};

/** NaN (two payloads, both signs), +-Inf, +-0, +-the largest finite, +-the smallest subnormal. */
const SPECIALS = [0x7fc1, 0xffc0, 0x7f81, 0x7f80, 0xff80, 0x0000, 0x8000, 0x7f7f, 0xff7f, 0x0001, 0x8001];

interface Inputs {
  raw: Uint8Array[];
  bits: Uint16Array[];
  n: number;
}

/**
 * A base and three bf16 models of n elements: the base of magnitude in [2^-7, 2^-3), each model the
 * base plus a few steps of its last bits (few distinct deltas: many equal keys, at the band edges too)
 * or equal to it, and at rate `special` per input the patterns above.
 */
function inputs(n: number, seed: number, special: number): Inputs {
  const random = rng(seed);
  const bits = Array.from({ length: 4 }, () => new Uint16Array(new SharedArrayBuffer(2 * n)));
  for (let i = 0; i < n; i++) {
    const b = (0x3c00 + Math.floor(random() * 0x200)) | (random() < 0.5 ? 0x8000 : 0);
    bits[0]![i] = b;
    for (let j = 1; j <= 3; j++)
      bits[j]![i] = (b + (random() < 0.1 ? 0 : Math.round((random() - 0.5) * 120))) & 0xffff;
  }
  for (const b of bits)
    for (let i = 0; i < n; i++)
      if (random() < special) b[i] = SPECIALS[Math.floor(random() * SPECIALS.length)]!;
  return { raw: bits.map((b) => new Uint8Array(b.buffer)), bits, n };
}

/** The f32 key (|delta|'s bits) of model j at element i, as the kernels compute it. */
function keyAt(c: Inputs, j: number, i: number): number {
  const f = new Float32Array(3);
  const u = new Uint32Array(f.buffer);
  u[0] = c.bits[0]![i]! << 16;
  u[1] = c.bits[j + 1]![i]! << 16;
  f[2] = f[1]! - f[0]!;
  return u[2]! & 0x7fffffff;
}

/**
 * A band of whole top-16-bit bins: around the key of a random element, or from one element's key to
 * another's (the inputs' keys are mostly multiples of 65 536: entries equal to lo and hi).
 */
function randomBand(c: Inputs, j: number, random: () => number, fraction: number): TiesBandRule {
  const key = () => Math.min(0x7f7f, keyAt(c, j, Math.floor(random() * c.n)) >>> 16);
  let lo: number;
  let hi: number;
  if (random() < 0.5) {
    const top = key();
    lo = Math.max(0, top - Math.floor(random() * 3));
    hi = top + 1 + Math.floor(random() * 3);
  } else {
    lo = key();
    hi = key();
    if (hi <= lo) hi = lo + 1 + Math.floor(random() * 3);
  }
  return { kind: 'band', lo: lo * 65536, hi: hi * 65536, fraction };
}

function run(
  kernel: typeof tiesMergeBandedJs,
  c: Inputs,
  args: Omit<TiesMergeBandedArgs, 'raw' | 'dtypes' | 'outRaw'>,
  start: number,
  end: number,
): { result: TiesMergeBandedResult; out: Uint16Array } {
  const outRaw = new Uint8Array(new SharedArrayBuffer(2 * c.n));
  const result = kernel(
    { ...args, raw: c.raw, dtypes: ['BF16', 'BF16', 'BF16', 'BF16'], outRaw },
    start,
    end,
  );
  return { result, out: new Uint16Array(outRaw.buffer).subarray(start, end) };
}

/** run of the WebAssembly kernel in place: the inputs copied into `memory`, the output written there. */
function runInPlace(
  memory: KernelMemory,
  c: Inputs,
  args: Omit<TiesMergeBandedArgs, 'raw' | 'dtypes' | 'outRaw'>,
  start: number,
  end: number,
): { result: TiesMergeBandedResult; out: Uint16Array } {
  const raw = c.raw.map((r) => {
    const view = memory.alloc(r.byteLength)!;
    view.set(r);
    return view;
  });
  const outRaw = memory.alloc(2 * c.n)!;
  const result = tiesMergeBandedWasm(
    { ...args, raw, dtypes: ['BF16', 'BF16', 'BF16', 'BF16'], outRaw, memory: memory.ref },
    start,
    end,
  );
  return { result, out: new Uint16Array(outRaw.buffer, outRaw.byteOffset, c.n).subarray(start, end) };
}

/** Every field, typed arrays as plain arrays (so a mismatch names the field). */
function plain(r: { result: TiesMergeBandedResult; out: Uint16Array }): Record<string, unknown> {
  const list = (a: Uint32Array | null) => (a === null ? null : Array.from(a));
  return {
    out: Array.from(r.out),
    above: r.result.above,
    keys: r.result.keys.map(list),
    bandBins: r.result.bandBins.map(list),
    fix: Array.from(r.result.fix),
    packed: r.result.packed.map((v) => Array.from(v)),
    overflow: r.result.overflow,
    first: r.result.first,
  };
}

describe('tiesMergeBanded in WebAssembly SIMD', () => {
  it('loads here and in pool workers (the build made dist/wasm/ties-banded.wasm)', async () => {
    expect(tiesBandedBackend()).toEqual({ kind: 'wasm' });
    const pool = new WorkerPool({ size: 1 });
    try {
      pool.register('tiesBandedBackend', new URL('./ties-banded-wasm.ts', import.meta.url));
      expect(await pool.run('tiesBandedBackend', {}, [{ start: 0, end: 1 }])).toEqual([{ kind: 'wasm' }]);
    } finally {
      await pool.close();
    }
  });

  // what both property tests draw besides their rules: size, data, weights, normalize, lambda
  const caseFields = {
    n: fc.integer({ min: 1, max: 40_000 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    special: fc.constantFrom(0, 0, 0.00003, 0.0002, 0.003),
    weights: fc.tuple(
      fc.constantFrom(0.5, 1, -0.3, 0, 1e-30, 2.5),
      fc.constantFrom(0.3, 1, 0.7, -1, 0),
      fc.constantFrom(0.2, 1, 0.25, 3),
    ),
    normalize: fc.boolean(),
    lambda: fc.constantFrom(1, 0.9, -0.5, 0, 2),
  };

  it('equals the JS kernel in every field on random inputs, rules, weights and ranges (copied in, and in place)', () => {
    const rule = fc.constantFrom('all', 'none', 'band', 'band', 'band');
    const before = tiesBandedStats();
    // room for every case's inputs and output (5 x 80 KB each), never reused: a case sees fresh bytes
    const memory = KernelMemory.create(64 * 1024 * 1024)!;
    fc.assert(
      fc.property(
        fc.record({
          ...caseFields,
          kinds: fc.tuple(rule, rule, rule),
          fraction: fc.constantFrom(0, 0.05, 0.5, 1),
          // the range: its start and length, taken modulo what fits
          at: fc.integer({ min: 0, max: 40_000 }),
          length: fc.integer({ min: 0, max: 40_000 }),
        }),
        (p) => {
          const c = inputs(p.n, p.seed, p.special);
          const random = rng(p.seed ^ 0x5bd1e995);
          const rules = p.kinds.map((kind, j): TiesBandRule =>
            kind === 'band' ? randomBand(c, j, random, p.fraction) : { kind },
          );
          const start = p.at % p.n;
          const end = start + 1 + (p.length % (p.n - start));
          const args = { rules, weights: [...p.weights], normalize: p.normalize, lambda: p.lambda };
          const want = plain(run(tiesMergeBandedJs, c, args, start, end));
          const got = plain(run(tiesMergeBandedWasm, c, args, start, end));
          expect(got).toEqual(want);
          expect(plain(runInPlace(memory, c, args, start, end))).toEqual(want);
        },
      ),
      { numRuns: 60, seed: 20261128 },
    );
    // the module did merge blocks (and declined the ones with NaN/Inf), in place too
    const after = tiesBandedStats();
    expect(after.inPlace - before.inPlace).toBeGreaterThan(20);
    expect(after.blocks - after.declined - (before.blocks - before.declined)).toBeGreaterThan(20);
    expect(after.declined - before.declined).toBeGreaterThan(5);
  });

  it('covers what it claims: decided and open elements, overflow, NaN/Inf, overflowing deltas', () => {
    const band = (lo: number, hi: number, fraction: number): TiesBandRule => ({
      kind: 'band',
      lo: lo * 65536,
      hi: hi * 65536,
      fraction,
    });
    const cases: { c: Inputs; rules: TiesBandRule[]; start: number; end: number; check: string }[] = [
      // a band among the deltas' keys: many elements left open (the checks below say how many)
      {
        c: inputs(30_001, 1, 0),
        rules: [band(0x3b80, 0x3c00, 0.5), { kind: 'all' }, band(0x3c00, 0x3c40, 0.5)],
        start: 3,
        end: 29_999,
        check: 'open',
      },
      {
        c: inputs(30_001, 2, 0),
        rules: [band(0, 0x7f80, 0), band(0, 0x7f80, 0), { kind: 'none' }],
        start: 0,
        end: 30_001,
        check: 'overflow',
      },
      {
        c: inputs(20_000, 3, 0.002),
        rules: [band(0x3b80, 0x3c00, 0.5), { kind: 'none' }, { kind: 'all' }],
        start: 5,
        end: 19_997,
        check: 'nonfinite',
      },
    ];
    // the largest finite values of both signs: their deltas overflow to +-Inf in f32
    const big = inputs(4099, 4, 0);
    for (let i = 0; i < big.n; i += 97) {
      big.bits[0]![i] = 0xff7f;
      big.bits[1 + (i % 3)]![i] = 0x7f7f;
    }
    cases.push({
      c: big,
      rules: [band(0x3b80, 0x3c00, 0.5), { kind: 'none' }, { kind: 'all' }],
      start: 0,
      end: big.n,
      check: 'inf',
    });
    for (const { c, rules, start, end, check } of cases) {
      // [1, -1, 0.5]: agreeing weights that sum to 0 (divisor 1)
      for (const [normalize, weights] of [
        [true, [0.5, -0.3, 0.2]],
        [false, [0.5, -0.3, 0.2]],
        [true, [1, -1, 0.5]],
      ] as const) {
        const args = { rules, weights: [...weights], normalize, lambda: 0.9 };
        const want = run(tiesMergeBandedJs, c, args, start, end);
        const before = tiesBandedStats();
        expect(plain(run(tiesMergeBandedWasm, c, args, start, end))).toEqual(plain(want));
        const after = tiesBandedStats();
        const blocks = after.blocks - before.blocks;
        const declined = after.declined - before.declined;
        expect(blocks).toBe(Math.ceil((end - start) / 8192));
        // finite inputs and deltas: the module merges every block; else it leaves some to the JS kernel
        expect(declined === 0).toBe(check === 'open' || check === 'overflow');
        const r = want.result;
        if (check === 'open') {
          expect(r.overflow).toBe(false);
          expect(r.fix.length).toBeGreaterThan(1000);
          expect(r.fix.length).toBeLessThan(end - start - 1000);
        }
        if (check === 'overflow') expect(r.overflow).toBe(true);
        if (check === 'nonfinite') expect(r.first.every((f) => f >= start)).toBe(true);
        if (check === 'inf') expect(r.first).toEqual([-1, -1, -1, -1]);
      }
    }
  });

  it("fixes up the open elements with tiesFixupRaw's bytes (from the packed inputs or from the raw bytes)", () => {
    const rule = fc.constantFrom('all', 'none', 'top', 'top', 'top');
    const before = tiesBandedStats();
    fc.assert(
      fc.property(
        fc.record({
          ...caseFields,
          kinds: fc.tuple(rule, rule, rule),
          quota: fc.integer({ min: 0, max: 60 }),
          equalBefore: fc.integer({ min: 0, max: 30 }),
        }),
        (p) => {
          const c = inputs(p.n, p.seed, p.special);
          const random = rng(p.seed ^ 0x1b873593);
          // wide bands: many open elements (several module blocks), many of them tied with a threshold
          const rules = [0, 1, 2].map((j) => randomBand(c, j, random, 1));
          const { result } = run(
            tiesMergeBandedJs,
            c,
            { rules, weights: [1, 1, 1], normalize: true, lambda: 1 },
            0,
            c.n,
          );
          if (result.overflow) return;
          const keep = p.kinds.map((kind, j): TiesKeep => {
            if (kind !== 'top') return { kind };
            const key = keyAt(c, j, Math.floor(random() * c.n));
            return { kind, key, quota: p.quota + Math.floor(random() * 3), equalBefore: p.equalBefore };
          });
          const args = {
            raw: c.raw,
            dtypes: ['BF16' as const, 'BF16' as const, 'BF16' as const, 'BF16' as const],
            keep,
            weights: [...p.weights],
            normalize: p.normalize,
            lambda: p.lambda,
            fix: result.fix,
          };
          const out = () => new Uint8Array(2 * c.n);
          const [fromRaw, fromValues, wasm, chosen] = [out(), out(), out(), out()];
          const seen = tiesFixupRaw({ ...args, outRaw: fromRaw });
          expect(tiesFixupRaw({ ...args, packed: result.packed, outRaw: fromValues })).toEqual(seen);
          // the ties counted: equalBefore plus the listed entries equal to the threshold key
          const ties = keep.map((r, j) => {
            if (r.kind !== 'top') return 0;
            let count = r.equalBefore;
            for (const x of result.fix) count += +(r.key <= 0x7f800000 && keyAt(c, j, x) === r.key);
            return count;
          });
          expect(seen).toEqual(ties);
          tiesFixupWasm({ ...args, packed: result.packed, outRaw: wasm });
          tiesFixup({ ...args, packed: result.packed, outRaw: chosen });
          // the first differing byte (-1: none): a whole-array toEqual is slow at this size
          const diff = (a: Uint8Array) => a.findIndex((x, i) => x !== fromRaw[i]);
          expect([diff(fromValues), diff(wasm), diff(chosen)]).toEqual([-1, -1, -1]);
        },
      ),
      { numRuns: 60, seed: 20261129 },
    );
    // the module did fix-up blocks (and declined the ones with NaN/Inf)
    const after = tiesBandedStats();
    expect(after.fixups - after.fixupsDeclined - (before.fixups - before.fixupsDeclined)).toBeGreaterThan(20);
    expect(after.fixupsDeclined - before.fixupsDeclined).toBeGreaterThan(5);
  });

  it('falls back to the JS kernel for weights the module does not take (same result)', () => {
    const c = inputs(9_000, 5, 0.001);
    const rules: TiesBandRule[] = [
      { kind: 'all' },
      { kind: 'band', lo: 0x3b800000, hi: 0x3c000000, fraction: 0.5 },
      { kind: 'all' },
    ];
    for (const weights of [
      [1e250, 1, 1],
      [1, Infinity, 1],
      [1, 1, NaN],
    ]) {
      const args = { rules, weights, normalize: false, lambda: 1 };
      expect(() => run(tiesMergeBandedWasm, c, args, 0, c.n)).toThrow(/weights below 1e200/);
      expect(plain(run(tiesMergeBanded, c, args, 0, c.n))).toEqual(
        plain(run(tiesMergeBandedJs, c, args, 0, c.n)),
      );
    }
    // large but allowed weights: sums that overflow f32 (Inf results), and lambda 0 times Inf (NaN)
    for (const lambda of [1, 0]) {
      const args = { rules, weights: [1e199, 1e199, -1e199], normalize: false, lambda };
      expect(plain(run(tiesMergeBandedWasm, c, args, 1, c.n - 1))).toEqual(
        plain(run(tiesMergeBandedJs, c, args, 1, c.n - 1)),
      );
    }
  });

  it('copies instead when the module cannot run on the caller memory (it cannot grow it by its scratch)', () => {
    const c = inputs(9_000, 6, 0);
    const full = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
    const raw = c.raw.map((r, k) => {
      const view = new Uint8Array(full.buffer, k * r.byteLength, r.byteLength);
      view.set(r);
      return view;
    });
    const outRaw = new Uint8Array(full.buffer, 4 * 2 * c.n, 2 * c.n);
    const rules: TiesBandRule[] = [
      { kind: 'band', lo: 0x3b800000, hi: 0x3c000000, fraction: 0.5 },
      { kind: 'all' },
      { kind: 'none' },
    ];
    const args = { rules, weights: [0.5, 0.3, 0.2], normalize: true, lambda: 1 };
    const before = tiesBandedStats();
    const result = tiesMergeBanded(
      { ...args, raw, dtypes: ['BF16', 'BF16', 'BF16', 'BF16'], outRaw, memory: { memory: full, id: -1 } },
      0,
      c.n,
    );
    const after = tiesBandedStats();
    expect(after.blocks).toBeGreaterThan(before.blocks);
    expect(after.inPlace).toBe(before.inPlace);
    expect(plain({ result, out: new Uint16Array(outRaw.buffer, outRaw.byteOffset, c.n) })).toEqual(
      plain(run(tiesMergeBandedJs, c, args, 0, c.n)),
    );
  });
});
