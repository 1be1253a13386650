/**
 * A small builder of ONNX graphs over the minimal ONNX proto in @hm3/proto: named values, nodes in
 * the order they are added (callers add them topologically), typed inputs and outputs, and
 * initializers as raw little-endian data. `encodeModel` gives the bytes onnxruntime reads.
 */
import { onnx } from '@hm3/proto';

export const OPSET = 17;
export const IR_VERSION = 8;

export type ElemType = 'float32' | 'int64';
/** A dimension: a fixed size or a symbolic name ("batch", "sequence", ...). */
export type Dim = number | string;

/** An attribute value, tagged so that a JS number says whether it is an INT or a FLOAT. */
export type Attr = { int: number } | { float: number } | { ints: readonly number[] };
export const int = (value: number): Attr => ({ int: value });
export const float = (value: number): Attr => ({ float: value });
export const ints = (values: readonly number[]): Attr => ({ ints: values });

const ELEM: Readonly<Record<ElemType, onnx.TensorProto_DataType>> = {
  float32: onnx.TensorProto_DataType.FLOAT,
  int64: onnx.TensorProto_DataType.INT64,
};

export class GraphBuilder {
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];
  private readonly initializers: onnx.TensorProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** Declares a graph input and returns its name. */
  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares `value` a graph output named `name` (through an Identity when the names differ). */
  output(value: string, name: string, type: ElemType, dims: readonly Dim[]): void {
    if (value !== name) {
      this.claim(name);
      this.nodes.push(node('Identity', [value], [name], {}, `${name}/identity`));
    }
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** Adds a node with one output and returns the output's name. */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, Attr>> = {},
    hint = opType,
  ): string {
    return this.opN(opType, inputs, 1, attrs, hint)[0]!;
  }

  /** Adds a node with `outputs` outputs and returns their names. */
  opN(
    opType: string,
    inputs: readonly string[],
    outputs: number,
    attrs: Readonly<Record<string, Attr>> = {},
    hint = opType,
  ): string[] {
    const id = this.counter++;
    const outs = Array.from({ length: outputs }, (_, k) =>
      this.fresh(`${hint}_${id}${outputs > 1 ? `_${k}` : ''}`),
    );
    this.nodes.push(node(opType, inputs, outs, attrs, `${hint}_${id}`));
    return outs;
  }

  /** A float32 constant (an initializer). */
  constF32(values: ArrayLike<number>, dims: readonly number[], hint = 'const'): string {
    return this.addInitializer(this.fresh(`${hint}_${this.counter++}`), Float32Array.from(values), dims);
  }

  /** An int64 constant (an initializer). */
  constI64(values: readonly number[], dims: readonly number[] = [values.length], hint = 'const'): string {
    return this.addInitializer(
      this.fresh(`${hint}_${this.counter++}`),
      BigInt64Array.from(values.map((v) => BigInt(v))),
      dims,
    );
  }

  /** A named initializer holding `data` (raw little-endian bytes in the model). */
  initializer(name: string, data: Float32Array | BigInt64Array, dims: readonly number[]): string {
    this.claim(name);
    return this.addInitializer(name, data, dims);
  }

  private addInitializer(name: string, data: Float32Array | BigInt64Array, dims: readonly number[]): string {
    this.initializers.push({
      ...onnx.TensorProto.fromPartial({}),
      name,
      dims: dims.map((d) => BigInt(d)),
      dataType: data instanceof Float32Array ? ELEM.float32 : ELEM.int64,
      rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  toModel(): onnx.ModelProto {
    return onnx.ModelProto.fromPartial({
      irVersion: BigInt(IR_VERSION),
      opsetImport: [{ domain: '', version: BigInt(OPSET) }],
      producerName: 'hm3-model',
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
  }

  /** The encoded ModelProto. */
  encode(): Uint8Array {
    return onnx.ModelProto.encode(this.toModel()).finish();
  }

  private fresh(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: value name ${name} used twice`);
    this.names.add(name);
  }
}

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.fromPartial({
    name,
    type: {
      value: {
        $case: 'tensorType',
        value: {
          elemType: ELEM[type],
          shape: {
            dim: dims.map((d) =>
              typeof d === 'number'
                ? { value: { $case: 'dimValue', value: BigInt(d) } }
                : { value: { $case: 'dimParam', value: d } },
            ),
          },
        },
      },
    },
  });
}

function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Readonly<Record<string, Attr>>,
  name: string,
): onnx.NodeProto {
  return onnx.NodeProto.fromPartial({
    opType,
    name,
    input: [...inputs],
    output: [...outputs],
    attribute: Object.entries(attrs).map(([key, a]) => attribute(key, a)),
  });
}

function attribute(name: string, a: Attr): onnx.AttributeProto {
  if ('int' in a)
    return onnx.AttributeProto.fromPartial({
      name,
      type: onnx.AttributeProto_AttributeType.INT,
      i: BigInt(a.int),
    });
  if ('float' in a)
    return onnx.AttributeProto.fromPartial({
      name,
      type: onnx.AttributeProto_AttributeType.FLOAT,
      f: a.float,
    });
  return onnx.AttributeProto.fromPartial({
    name,
    type: onnx.AttributeProto_AttributeType.INTS,
    ints: a.ints.map((v) => BigInt(v)),
  });
}
