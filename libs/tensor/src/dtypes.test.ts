import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToNumber,
  checkFinite,
  decodeFloats,
  encodeFloats,
  f16BitsToNumber,
  f16ToF32Table,
  findNonFinite,
  floatToBf16,
  floatToF16,
  NonFiniteTensorError,
  numberToBf16Bits,
  numberToF16Bits,
  type NonFiniteReport,
} from './dtypes.js';

// ---- An exact reference: round a double to a binary format with BigInt arithmetic, once. ----------

interface Format {
  expBits: number;
  mantBits: number;
}
const BF16: Format = { expBits: 8, mantBits: 7 };
const F16: Format = { expBits: 5, mantBits: 10 };

/** Bits of the round-to-nearest-even value of `x` in `fmt` (NaN -> -1: the caller checks NaN-ness). */
function referenceBits(x: number, fmt: Format): number {
  if (Number.isNaN(x)) return -1;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const signBit = view.getUint8(0) >> 7 ? 1 << (fmt.expBits + fmt.mantBits) : 0;
  const expAllOnes = ((1 << fmt.expBits) - 1) << fmt.mantBits;
  if (!Number.isFinite(x)) return signBit | expAllOnes;
  if (x === 0) return signBit;
  // |x| = m * 2^e exactly
  const raw = view.getBigUint64(0) & 0x7fffffffffffffffn;
  const e64 = Number(raw >> 52n);
  const frac = raw & ((1n << 52n) - 1n);
  const m = e64 === 0 ? frac : frac | (1n << 52n);
  const e = e64 === 0 ? -1074 : e64 - 1075;
  const bias = (1 << (fmt.expBits - 1)) - 1;
  const emin = 1 - bias;
  const emax = bias;
  const k = m.toString(2).length - 1 + e; // floor(log2 |x|)
  let q = Math.max(k, emin) - fmt.mantBits; // exponent of the quantum
  let n: bigint;
  if (e >= q) {
    n = m << BigInt(e - q);
  } else {
    const shift = BigInt(q - e);
    n = m >> shift;
    const rem = m & ((1n << shift) - 1n);
    const half = 1n << (shift - 1n);
    if (rem > half || (rem === half && (n & 1n) === 1n)) n += 1n;
  }
  if (n === 1n << BigInt(fmt.mantBits + 1)) {
    n >>= 1n;
    q += 1;
  }
  if (q + fmt.mantBits > emax) return signBit | expAllOnes; // overflow
  if (n < 1n << BigInt(fmt.mantBits)) return signBit | Number(n); // subnormal (or zero)
  const exponentField = q + fmt.mantBits + bias;
  return signBit | (exponentField << fmt.mantBits) | Number(n - (1n << BigInt(fmt.mantBits)));
}

function isNaNBits(bits: number, fmt: Format): boolean {
  const expAllOnes = ((1 << fmt.expBits) - 1) << fmt.mantBits;
  return (bits & expAllOnes) === expAllOnes && (bits & ((1 << fmt.mantBits) - 1)) !== 0;
}

function expectSameRounding(x: number, ours: number, fmt: Format): void {
  if (Number.isNaN(x)) {
    expect(isNaNBits(ours, fmt)).toBe(true);
    return;
  }
  expect({ x, bits: ours }).toEqual({ x, bits: referenceBits(x, fmt) });
}

describe('decode', () => {
  it('F16 table and BF16 shift decode every one of the 65 536 patterns exactly', () => {
    const table = f16ToF32Table();
    const bits = new Uint16Array(65536).map((_, i) => i);
    const viaF32 = decodeFloats('F16', new Uint8Array(bits.buffer), 'F32');
    const bfF32 = decodeFloats('BF16', new Uint8Array(bits.buffer), 'F32');
    const bfF64 = decodeFloats('BF16', new Uint8Array(bits.buffer), 'F64');
    const same = (a: number, b: number): boolean => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const exact = f16BitsToNumber(h);
      const bf = new Float32Array(new Uint32Array([h << 16]).buffer)[0]!; // BF16 = F32 with the low 16 bits zero
      const ok =
        same(table[h]!, exact) &&
        same(viaF32[h]!, exact) &&
        same(bfF32[h]!, bf) &&
        same(bfF64[h]!, bf) &&
        same(bf16BitsToNumber(h), bf);
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
    expect(table[0x3c00]).toBe(1);
    expect(table[0x0001]).toBe(2 ** -24);
    expect(bfF32[0x3f80]).toBe(1);
  });

  it('round-trips every non-NaN F16 and BF16 pattern through F32 and F64', () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const f = f16BitsToNumber(h);
      if (!Number.isNaN(f) && numberToF16Bits(f) !== h) bad.push(h);
      const b = bf16BitsToNumber(h);
      if (!Number.isNaN(b) && numberToBf16Bits(b) !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it('decodes from a misaligned byte offset and widens/narrows F32 <-> F64', () => {
    const buf = new Uint8Array(9);
    buf.set(new Uint8Array(new Float32Array([1.5, -2.25]).buffer), 1);
    expect([...decodeFloats('F32', buf.subarray(1), 'F64')]).toEqual([1.5, -2.25]);
    expect([...decodeFloats('F64', new Uint8Array(new Float64Array([0.1]).buffer), 'F32')]).toEqual([
      Math.fround(0.1),
    ]);
    expect(() => decodeFloats('I64', new Uint8Array(8), 'F32')).toThrow(/not a float dtype/);
    expect(() => decodeFloats('F32', new Uint8Array(5), 'F32')).toThrow(/whole number/);
  });
});

describe('round to nearest even (exact BigInt reference)', () => {
  const cases: [string, number][] = [
    ['bf16 tie rounds to even (down)', 1 + 2 ** -8],
    ['bf16 tie rounds to even (up)', 1 + 3 * 2 ** -8],
    ['just above a bf16 tie, below F32 precision (the double-rounding trap)', 1 + 2 ** -8 + 2 ** -40],
    ['just below a bf16 tie, below F32 precision', 1 + 2 ** -8 - 2 ** -40],
    ['f16 tie to even', 1 + 2 ** -11],
    ['just above an f16 tie, below F32 precision', 1 + 2 ** -11 + 2 ** -45],
    ['smallest bf16 subnormal', 2 ** -133],
    ['half the smallest bf16 subnormal (tie to 0)', 2 ** -134],
    ['a hair above half the smallest bf16 subnormal', 2 ** -134 + 2 ** -170],
    ['below F32 subnormals', 2 ** -160],
    ['smallest f16 subnormal', 2 ** -24],
    ['f16 subnormal tie to 0', 2 ** -25],
    ['f16 subnormal tie to even (up)', 3 * 2 ** -25],
    ['a hair above the f16 subnormal tie', 2 ** -25 + 2 ** -60],
    ['largest f16 subnormal to smallest normal', 2 ** -14 - 2 ** -26],
    ['f16 max', 65504],
    ['just under the f16 overflow boundary', 65519.99],
    ['f16 overflow boundary (to Inf)', 65520],
    ['bf16 max', 3.3895313892515355e38],
    ['F32 max (bf16 overflow)', 3.4028234663852886e38],
    ['between F32 max and the F32 overflow boundary', 3.4028235e38 + 1e31],
    ['beyond F32', 1e300],
    ['negative tie', -(1 + 2 ** -8)],
    ['negative zero', -0],
    ['infinity', -Infinity],
    ['NaN', NaN],
    ['0.1', 0.1],
  ];
  for (const [label, x] of cases) {
    it(`bf16 and f16: ${label}`, () => {
      expectSameRounding(x, numberToBf16Bits(x), BF16);
      expectSameRounding(x, numberToF16Bits(x), F16);
      // the array paths agree with the scalar ones (F64 source, and F32 source for F32-exact inputs)
      const bf = floatToBf16(new Float64Array([x]), new Uint16Array(1))[0]!;
      const h = floatToF16(new Float64Array([x]), new Uint16Array(1))[0]!;
      expectSameRounding(x, bf, BF16);
      expectSameRounding(x, h, F16);
      const x32 = Math.fround(x);
      expectSameRounding(x32, floatToBf16(new Float32Array([x32]), new Uint16Array(1))[0]!, BF16);
      expectSameRounding(x32, floatToF16(new Float32Array([x32]), new Uint16Array(1))[0]!, F16);
    });
  }

  it('NaN stays NaN with its sign', () => {
    const negNaN = new Float32Array(new Uint32Array([0xffc00001]).buffer);
    expect(floatToBf16(negNaN, new Uint16Array(1))[0]! & 0x8000).toBe(0x8000);
    expect(isNaNBits(floatToBf16(negNaN, new Uint16Array(1))[0]!, BF16)).toBe(true);
    // a signalling NaN whose payload sits only in the low 16 bits must not become Inf
    const lowPayload = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    expect(isNaNBits(floatToBf16(lowPayload, new Uint16Array(1))[0]!, BF16)).toBe(true);
    expect(isNaNBits(floatToF16(lowPayload, new Uint16Array(1))[0]!, F16)).toBe(true);
  });

  it('property: any double rounds to the reference bf16 and f16', () => {
    fc.assert(
      fc.property(fc.double(), (x) => {
        expectSameRounding(x, numberToBf16Bits(x), BF16);
        expectSameRounding(x, numberToF16Bits(x), F16);
      }),
      { numRuns: 20_000 },
    );
  });

  it('property: doubles near bf16/f16 rounding boundaries round like the reference', () => {
    // a 16-bit value plus a fraction of its ulp near +-1/2, plus a tiny tail below F32 precision
    const nearTie = fc.record({
      bits: fc.integer({ min: 0, max: 0xffff }),
      half: fc.constantFrom(-0.5, 0.5),
      jitter: fc.integer({ min: -4, max: 4 }),
      tailExp: fc.integer({ min: 30, max: 60 }),
    });
    fc.assert(
      fc.property(nearTie, fc.boolean(), ({ bits, half, jitter, tailExp }, isBf16) => {
        const fmt = isBf16 ? BF16 : F16;
        const base = isBf16 ? bf16BitsToNumber(bits) : f16BitsToNumber(bits);
        if (!Number.isFinite(base)) return;
        const next = isBf16 ? bf16BitsToNumber((bits & 0x7fff) + 1) : f16BitsToNumber((bits & 0x7fff) + 1);
        const ulp = Number.isFinite(next) ? next - Math.abs(base) : Math.abs(base) * 2 ** -fmt.mantBits;
        const x = base + Math.sign(base || 1) * ulp * (half + jitter * 2 ** -tailExp);
        expectSameRounding(x, isBf16 ? numberToBf16Bits(x) : numberToF16Bits(x), fmt);
      }),
      { numRuns: 20_000 },
    );
  });

  it('property: F32 arrays encode like the reference', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 64 }), (values) => {
        const bf = floatToBf16(values, new Uint16Array(values.length));
        const h = floatToF16(values, new Uint16Array(values.length));
        for (let i = 0; i < values.length; i++) {
          expectSameRounding(values[i]!, bf[i]!, BF16);
          expectSameRounding(values[i]!, h[i]!, F16);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('encodeFloats writes little-endian bytes of each float dtype, also at a misaligned offset', () => {
    const values = new Float64Array([1, -2.5, 65536, 1e-9]);
    const bf = encodeFloats('BF16', values);
    expect([...new Uint16Array(bf.buffer)]).toEqual([...values].map(numberToBf16Bits));
    const out = new Uint8Array(1 + 8);
    encodeFloats('F16', values, out.subarray(1));
    expect([...new Uint16Array(out.slice(1).buffer)]).toEqual([...values].map(numberToF16Bits));
    expect([...new Float32Array(encodeFloats('F32', values).buffer)]).toEqual([...values].map(Math.fround));
    expect(() => encodeFloats('I32', values)).toThrow(/not a float dtype/);
  });
});

describe('NaN / Inf detection', () => {
  it('finds the first non-finite element in each representation', () => {
    expect(findNonFinite('F32', new Float32Array([1, 2, 3]))).toBe(-1);
    expect(findNonFinite('F32', new Float32Array([1, Infinity, NaN]))).toBe(1);
    expect(findNonFinite('F64', new Float64Array([0, -0, NaN]))).toBe(2);
    expect(findNonFinite('F16', new Uint16Array([0x3c00, 0xfc00]))).toBe(1); // 1, -Inf
    expect(findNonFinite('BF16', new Uint16Array([0x3f80, 0x7fc0]))).toBe(1); // 1, NaN
    expect(findNonFinite('BF16', new Uint16Array([0x7f7f]))).toBe(-1); // max finite
  });

  it('policy error throws naming the file, tensor and index; policy warn reports', () => {
    const values = new Float32Array([0, 0, NaN]);
    let thrown: unknown;
    try {
      checkFinite('F32', values, {
        file: 'a/model.safetensors',
        tensor: 'lm_head.weight',
        policy: 'error',
        indexOffset: 100,
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(NonFiniteTensorError);
    expect((thrown as Error).message).toMatch(/a\/model\.safetensors.*lm_head\.weight.*NaN.*index 102/);
    const warned: NonFiniteReport[] = [];
    const report = checkFinite('BF16', new Uint16Array([0xff80]), {
      file: 'f',
      tensor: 't',
      policy: 'warn',
      onWarn: (r) => warned.push(r),
    });
    expect(report).toEqual({ file: 'f', tensor: 't', index: 0, value: -Infinity });
    expect(warned).toEqual([report]);
    expect(checkFinite('F64', new Float64Array([1]), { file: 'f', tensor: 't', policy: 'error' })).toBeNull();
  });
});
