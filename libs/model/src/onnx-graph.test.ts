import { onnx } from '@hm3/proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { rmsNorm, ropeFrequencies, ropeTables, torchRowSum } from './llama-graph.js';
import { GraphBuilder, IR_VERSION, OPSET } from './onnx-graph.js';

describe('GraphBuilder', () => {
  it('encodes a ModelProto that decodes back and runs on onnxruntime', async () => {
    const g = new GraphBuilder('affine');
    const x = g.input('x', 'float32', ['batch', 3]);
    g.output(
      g.op('Add', [g.op('Mul', [x, g.constF32([1, 2, 3], [3])]), g.constF32([10, 20, 30], [3])]),
      'y',
      'float32',
      ['batch', 3],
    );
    const bytes = g.encode();
    const decoded = onnx.ModelProto.decode(bytes);
    expect(decoded.irVersion).toBe(BigInt(IR_VERSION));
    expect(decoded.opsetImport[0]?.version).toBe(BigInt(OPSET));
    expect(decoded.graph?.node.map((n) => n.opType)).toEqual(['Mul', 'Add', 'Identity']);
    const session = await InferenceSession.create(bytes);
    const out = await session.run({
      x: new Tensor('float32', Float32Array.from([1, 1, 1, 2, 2, 2]), [2, 3]),
    });
    expect(Array.from(out['y']!.data as Float32Array)).toEqual([11, 22, 33, 12, 24, 36]);
    await session.release();
  });

  it('refuses a value name used twice', () => {
    const g = new GraphBuilder('dup');
    g.input('x', 'float32', [1]);
    expect(() => g.input('x', 'float32', [1])).toThrow(/used twice/);
  });

  it('builds an RMSNorm that matches the formula', async () => {
    const g = new GraphBuilder('rms');
    const x = g.input('x', 'float32', [2, 4]);
    const w = g.input('w', 'float32', [4]);
    g.output(rmsNorm(g, x, w, 1e-5, 4), 'y', 'float32', [2, 4]);
    const session = await InferenceSession.create(g.encode());
    const xs = [1, -2, 3, 0.5, 0, 0, 0, 4];
    const ws = [1, 2, 0.5, -1];
    const y = (
      await session.run({
        x: new Tensor('float32', Float32Array.from(xs), [2, 4]),
        w: new Tensor('float32', Float32Array.from(ws), [4]),
      })
    )['y']!.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      const row = xs.slice(r * 4, r * 4 + 4);
      const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / 4 + 1e-5);
      row.forEach((v, i) => expect(y[r * 4 + i]).toBeCloseTo(ws[i]! * v * inv, 5));
    }
    await session.release();
  });

  it("sums rows in the order of PyTorch's CPU sum kernel, bit for bit (8 lanes, 4 accumulators)", async () => {
    const [rows, size] = [64, 128];
    const g = new GraphBuilder('row_sum');
    g.output(torchRowSum(g, g.input('x', 'float32', [rows, size]), size), 'y', 'float32', [rows, 1]);
    const session = await InferenceSession.create(g.encode());
    let state = 7;
    const xs = Float32Array.from({ length: rows * size }, () => {
      state = (state * 16807) % 2147483647;
      return Math.fround((state / 2147483647 - 0.5) * 1000);
    });
    const y = (await session.run({ x: new Tensor('float32', xs, [rows, size]) }))['y']!.data as Float32Array;
    const f = Math.fround;
    let sequentialDiffers = 0;
    for (let r = 0; r < rows; r++) {
      const x = xs.subarray(r * size, (r + 1) * size);
      // accumulator k, lane l: vectors k, k+4, k+8, ... of 8 lanes, added in sequence
      const acc = [0, 1, 2, 3].map((k) =>
        Array.from({ length: 8 }, (_, l) => {
          let a = 0;
          for (let j = 0; j < size / 32; j++) a = f(a + x[(4 * j + k) * 8 + l]!);
          return a;
        }),
      );
      const lanes = acc[0]!.map((v, l) => f(f(f(v + acc[1]![l]!) + acc[2]![l]!) + acc[3]![l]!));
      const expected = lanes.reduce((t, v) => f(t + v), 0);
      expect(y[r]).toBe(expected);
      if (x.reduce((t, v) => f(t + v), 0) !== expected) sequentialDiffers++;
    }
    expect(sequentialDiffers).toBeGreaterThan(0); // the order is not a plain left-to-right sum
    await session.release();
  });

  it('computes RoPE frequencies 1/theta^(2i/D), duplicated over the two halves', () => {
    const f = ropeFrequencies(8, 10000);
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(1 / Math.pow(10000, 2 / 8), 7);
    expect(f[4]).toBe(f[0]);
    expect(f[7]).toBe(f[3]);
  });

  it('computes RoPE tables cos/sin(fround(pos * inv_freq)) per position, rounded once from float64', () => {
    const f = ropeFrequencies(8, 10000);
    const { cos, sin, signedSin } = ropeTables(new BigInt64Array([0n, 5n, 2n]), 8, 10000);
    expect(cos.length).toBe(24);
    expect(Array.from(cos.slice(0, 8))).toEqual(Array(8).fill(1));
    expect(Array.from(sin.slice(0, 8))).toEqual(Array(8).fill(0));
    for (let i = 0; i < 8; i++) {
      const angle = Math.fround(5 * f[i]!);
      expect(cos[8 + i]).toBe(Math.fround(Math.cos(angle)));
      expect(sin[8 + i]).toBe(Math.fround(Math.sin(angle)));
    }
    expect(cos[16 + 3]).toBe(Math.fround(Math.cos(Math.fround(2 * f[3]!))));
    // signedSin = cat(-sin₁, sin₂) per row, for x ⊙ cos + cat(x₂, x₁) ⊙ signedSin
    expect(Array.from(signedSin.slice(8, 16))).toEqual([
      ...Array.from(sin.slice(8, 12), (v) => -v),
      ...Array.from(sin.slice(12, 16)),
    ]);
  });
});
