/**
 * A one-node ONNX model, encoded by hand (protobuf wire format, onnx.proto3 field numbers):
 * `y = Gemm(x, W, b, transB = 1)`, i.e. y[M, N] = x[M, K] · W[N, K]ᵀ (+ b[N]), the linear layer
 * of src/kernels/linear.ts, with W (and b) as f32 initializers and x as the one graph input.
 * The kernel page's peer (./peer.ts) and `npm run bench -- kernels` give it to onnxruntime-web.
 */

/** Protobuf writer: a message is a list of byte chunks (kept apart so a 100 MB weight is copied once). */
class Msg {
  readonly parts: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
  private varint(v: number): this {
    const out: number[] = [];
    let x = BigInt(v);
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x) byte |= 0x80;
      out.push(byte);
    } while (x);
    return this.push(Uint8Array.from(out));
  }
  private key(field: number, wire: 0 | 2): this {
    return this.varint(field * 8 + wire);
  }
  int(field: number, v: number): this {
    return this.key(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    return this.key(field, 2).varint(b.length).push(b);
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Msg): this {
    this.key(field, 2).varint(m.length);
    for (const p of m.parts) this.push(p);
    return this;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

/** TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian f32). */
function tensor(name: string, dims: number[], data: Float32Array): Msg {
  const m = new Msg();
  for (const d of dims) m.int(1, d);
  m.int(2, FLOAT).string(8, name);
  return m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** ValueInfoProto name (1), type (2) → TypeProto.tensor_type (1) → elem_type (1), shape (2) → dim (1) → dim_value (1). */
function valueInfo(name: string, dims: number[]): Msg {
  const shape = new Msg();
  for (const d of dims) shape.msg(1, new Msg().int(1, d));
  return new Msg().string(1, name).msg(2, new Msg().msg(1, new Msg().int(1, FLOAT).msg(2, shape)));
}

export interface GemmModel {
  /** The serialized ModelProto (ONNX IR 7, opset 13). */
  bytes: Uint8Array;
  /** Graph input name (x, f32 [M, K]) and output name (y, f32 [M, N]). */
  input: string;
  output: string;
}

/**
 * Encodes `y = x · weightᵀ (+ bias)` as an ONNX model: x f32 [m, k] (graph input), weight f32
 * [n, k] row-major (the layout of our linear's W), bias f32 [n] or null.
 * @throws Error when weight or bias does not hold the N·K or N values the shapes say
 */
export function encodeGemmModel(m: number, k: number, n: number, weight: Float32Array, bias: Float32Array | null): GemmModel {
  if (weight.length !== n * k) throw new Error(`encodeGemmModel: weight has ${weight.length} values, expected N·K = ${n}·${k}`);
  if (bias && bias.length !== n) throw new Error(`encodeGemmModel: bias has ${bias.length} values, expected N = ${n}`);
  // NodeProto: input (1), output (2), name (3), op_type (4), attribute (5).
  // AttributeProto: name (1), i (3), type (20; INT = 2).
  const node = new Msg().string(1, 'x').string(1, 'W');
  if (bias) node.string(1, 'b');
  node.string(2, 'y').string(3, 'linear').string(4, 'Gemm').msg(5, new Msg().string(1, 'transB').int(3, 1).int(20, 2));
  // GraphProto: node (1), name (2), initializer (5), input (11), output (12).
  const graph = new Msg().msg(1, node).string(2, `linear_${m}x${k}x${n}`).msg(5, tensor('W', [n, k], weight));
  if (bias) graph.msg(5, tensor('b', [n], bias));
  graph.msg(11, valueInfo('x', [m, k])).msg(12, valueInfo('y', [m, n]));
  // ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8: domain 1, version 2).
  const model = new Msg().int(1, 7).string(2, 'solacelive kernel peer').msg(7, graph).msg(8, new Msg().string(1, '').int(2, 13));
  return { bytes: model.finish(), input: 'x', output: 'y' };
}
