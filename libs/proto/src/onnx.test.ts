import { describe, expect, it } from 'vitest';
import { onnx } from './index.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

// Expected bytes are written out by hand from ONNX's field numbers (onnx/onnx.proto): they pin the
// numbers, wire types and packing, so what we write is what any ONNX reader expects.
describe('minimal ONNX messages', () => {
  it('encode NodeProto with ONNX field numbers', () => {
    const node = onnx.NodeProto.fromPartial({ input: ['x'], output: ['y'], opType: 'Relu' });
    expect(hex(onnx.NodeProto.encode(node).finish())).toBe('0a0178' + '120179' + '220452656c75');
  });

  it('encode TensorProto dims unpacked (as upstream proto2) and float_data packed', () => {
    const tensor = onnx.TensorProto.fromPartial({
      dims: [2n, 3n],
      dataType: onnx.TensorProto_DataType.FLOAT,
      name: 'w',
      rawData: Buffer.from([0, 0, 0x80, 0x3f]),
    });
    expect(hex(onnx.TensorProto.encode(tensor).finish())).toBe(
      '08020803' + '1001' + '420177' + '4a040000803f',
    );
    const packed = onnx.TensorProto.fromPartial({ floatData: [1] });
    expect(hex(onnx.TensorProto.encode(packed).finish())).toBe('22040000803f');
  });

  it('decode dims written packed as well as unpacked', () => {
    expect(onnx.TensorProto.decode(Buffer.from('0a020203', 'hex')).dims).toEqual([2n, 3n]);
    expect(onnx.TensorProto.decode(Buffer.from('08020803', 'hex')).dims).toEqual([2n, 3n]);
  });

  it('encode AttributeProto type (field 20), unpacked ints, and an explicit zero float', () => {
    const axes = onnx.AttributeProto.fromPartial({
      name: 'axes',
      type: onnx.AttributeProto_AttributeType.INTS,
      ints: [0n, 1n],
    });
    expect(hex(onnx.AttributeProto.encode(axes).finish())).toBe('0a0461786573' + 'a00107' + '4000' + '4001');
    const alpha = onnx.AttributeProto.fromPartial({
      name: 'a',
      type: onnx.AttributeProto_AttributeType.FLOAT,
      f: 0,
    });
    // proto2-style presence: f = 0 is written (tag 0x15, fixed32 zero), not dropped.
    expect(hex(onnx.AttributeProto.encode(alpha).finish())).toBe('0a0161' + 'a00101' + '1500000000');
  });

  it('round-trip a one-node model with typed inputs and outputs', () => {
    const floatTensor = (dims: (bigint | string)[]) => ({
      value: {
        $case: 'tensorType' as const,
        value: {
          elemType: onnx.TensorProto_DataType.FLOAT,
          shape: {
            dim: dims.map((d) =>
              typeof d === 'bigint'
                ? { value: { $case: 'dimValue' as const, value: d } }
                : { value: { $case: 'dimParam' as const, value: d } },
            ),
          },
        },
      },
    });
    const model = onnx.ModelProto.fromPartial({
      irVersion: 10n,
      opsetImport: [{ domain: '', version: 17n }],
      producerName: 'hm3',
      graph: {
        name: 'relu',
        node: [{ input: ['x'], output: ['y'], opType: 'Relu', name: 'relu0' }],
        input: [{ name: 'x', type: floatTensor(['batch', 4n]) }],
        output: [{ name: 'y', type: floatTensor(['batch', 4n]) }],
      },
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    expect(onnx.ModelProto.decode(bytes)).toEqual(model);
    // ir_version is field 1 (varint 10); opset_import field 8.
    expect(hex(bytes.subarray(0, 2))).toBe('080a');
  });
});
