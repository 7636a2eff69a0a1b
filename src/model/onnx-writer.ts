/**
 * A minimal ONNX ModelProto encoder: just enough protobuf to write graphs
 * (typed initializers, value infos, nodes with scalar/list/tensor attributes) without a
 * protobuf dependency. Field numbers follow onnx/onnx.proto; onnxruntime is the judge of
 * correctness (see test/model.test.ts).
 */

import { InvalidArgumentError } from "../core/errors.ts";

/**
 * A node attribute. The wrapper object names the protobuf type explicitly because a
 * JS number can't say whether it is FLOAT or INT (Gemm's `alpha` must be a float,
 * `transB` an int, and onnxruntime rejects the wrong one):
 * - `{ f: 1.0 }` FLOAT, `{ i: 1 }` INT (int64), `{ s: "text" }` STRING (UTF-8),
 * - `{ floats: [...] }` FLOATS, `{ ints: [...] }` INTS.
 */
export type OnnxAttr =
  | { f: number }
  | { i: number }
  | { s: string }
  | { floats: number[] }
  | { ints: number[] }
  | { t: Omit<OnnxTensor, "name"> & { name?: string } };

/** One graph node; `name` defaults to `<opType>_<index>`. */
export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, OnnxAttr>;
}

/** Element types the writer knows (ONNX TensorProto.DataType names, lower case). */
export type OnnxElemType = "float32" | "uint8" | "int8" | "int32" | "int64" | "bool" | "float64";

/** An initializer, written as little-endian `raw_data`; the type follows the array. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  /** Float32Array (float32), Float64Array, Int32Array, BigInt64Array (int64), Int8Array, Uint8Array (uint8, or bool with `type: "bool"`). */
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;
  /** Only needed for bool (a Uint8Array of 0/1). */
  type?: "bool";
}

/** A graph input or output; a string dim is symbolic (e.g. `"batch"`). */
export interface OnnxValueInfo {
  name: string;
  dims: (number | string)[];
  /** Element type (default float32). */
  type?: OnnxElemType;
}

/** Everything needed to write one single-graph model. */
export interface OnnxGraphSpec {
  name: string;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers: OnnxTensor[];
  nodes: OnnxNode[];
  /** ai.onnx opset version; default 13. */
  opset?: number;
  producer?: string;
  docString?: string;
  /** Written as ModelProto.metadata_props (readable via onnxruntime's metadata). */
  metadata?: Record<string, string>;
}

// IR version 8 is what onnx 1.10-1.12 writes for opset 13..17 and every onnxruntime
// since 1.10 reads it.
const IR_VERSION = 8;
const DEFAULT_OPSET = 13;
/** TensorProto.DataType values. */
const ELEM: Record<OnnxElemType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

// Protobuf wire types.
const Wire = { Varint: 0, Bytes: 2, Fixed32: 5 } as const;
type Wire = (typeof Wire)[keyof typeof Wire];

// AttributeProto.AttributeType values.
const AttrType = { Float: 1, Int: 2, String: 3, Tensor: 4, Floats: 6, Ints: 7 } as const;

const utf8 = new TextEncoder();

/** Append-only protobuf byte builder. */
class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  /** Unsigned or two's-complement int64 varint (negative values take 10 bytes). */
  varint(value: number): void {
    if (!Number.isSafeInteger(value)) {
      throw new InvalidArgumentError(`protobuf varint must be a safe integer, got ${value}`);
    }
    if (value >= 0 && value < 0x80000000) {
      let v = value;
      while (v >= 0x80) {
        this.byte((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      this.byte(v);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  tag(field: number, wire: Wire): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, value: number): void {
    this.tag(field, Wire.Varint);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, Wire.Fixed32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.len, value, true);
    this.len += 4;
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, Wire.Bytes);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, value: string): void {
    this.bytes(field, utf8.encode(value));
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Element type of an initializer, from its array. */
function elemTypeOf(t: Pick<OnnxTensor, "data" | "type">): OnnxElemType {
  const d = t.data;
  if (d instanceof Float32Array) return "float32";
  if (d instanceof Float64Array) return "float64";
  if (d instanceof Int32Array) return "int32";
  if (d instanceof BigInt64Array) return "int64";
  if (d instanceof Int8Array) return "int8";
  return t.type === "bool" ? "bool" : "uint8";
}

/** Little-endian raw bytes of a typed array (ONNX raw_data is little-endian whatever the host). */
function littleEndianBytes(data: OnnxTensor["data"]): Uint8Array {
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  const n = data.length;
  if (data instanceof Float32Array)
    for (let k = 0; k < n; k++) view.setFloat32(k * 4, data[k] ?? 0, true);
  else if (data instanceof Float64Array)
    for (let k = 0; k < n; k++) view.setFloat64(k * 8, data[k] ?? 0, true);
  else if (data instanceof Int32Array)
    for (let k = 0; k < n; k++) view.setInt32(k * 4, data[k] ?? 0, true);
  else if (data instanceof BigInt64Array)
    for (let k = 0; k < n; k++) view.setBigInt64(k * 8, data[k] ?? 0n, true);
  else out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return out;
}

function writeTensor(tensor: ProtoWriter, t: Omit<OnnxTensor, "name"> & { name?: string }): void {
  for (const d of t.dims) tensor.int(1, d);
  tensor.int(2, ELEM[elemTypeOf(t)]);
  if (t.name !== undefined) tensor.string(8, t.name);
  tensor.bytes(9, littleEndianBytes(t.data));
}

function writeAttribute(w: ProtoWriter, name: string, attr: OnnxAttr): void {
  w.string(1, name);
  // proto2 repeated scalars are written unpacked (one tag per element), as the
  // reference onnx serializer does; protobuf readers accept either form.
  if ("f" in attr) {
    w.float(2, attr.f);
    w.int(20, AttrType.Float);
  } else if ("i" in attr) {
    w.int(3, attr.i);
    w.int(20, AttrType.Int);
  } else if ("s" in attr) {
    w.string(4, attr.s);
    w.int(20, AttrType.String);
  } else if ("floats" in attr) {
    for (const f of attr.floats) w.float(7, f);
    w.int(20, AttrType.Floats);
  } else if ("ints" in attr) {
    for (const i of attr.ints) w.int(8, i);
    w.int(20, AttrType.Ints);
  } else if ("t" in attr) {
    w.message(5, (tensor) => writeTensor(tensor, attr.t));
    w.int(20, AttrType.Tensor);
  } else {
    throw new InvalidArgumentError(`attribute ${name}: unknown representation`);
  }
}

function writeValueInfo(w: ProtoWriter, info: OnnxValueInfo): void {
  w.string(1, info.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ELEM[info.type ?? "float32"]);
      tensor.message(2, (shape) => {
        for (const dim of info.dims) {
          shape.message(1, (d) => {
            if (typeof dim === "string") d.string(2, dim);
            else d.int(1, dim);
          });
        }
      });
    }),
  );
}

function validate(spec: OnnxGraphSpec): void {
  for (const t of spec.initializers) {
    if (!t.dims.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(`initializer ${t.name}: dims must be non-negative integers`);
    }
    const size = t.dims.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw new InvalidArgumentError(
        `initializer ${t.name}: dims [${t.dims.join(",")}] hold ${size} values, data has ${t.data.length}`,
      );
    }
  }
  for (const v of [...spec.inputs, ...spec.outputs]) {
    for (const d of v.dims) {
      if (typeof d === "number" && !(Number.isInteger(d) && d >= 0)) {
        throw new InvalidArgumentError(`value ${v.name}: dim ${d} must be a non-negative integer`);
      }
    }
  }
  for (const n of spec.nodes) {
    if (n.opType === "") throw new InvalidArgumentError("node with empty opType");
  }
}

/** Encodes a single-graph ONNX model (IR 8, ai.onnx opset `spec.opset ?? 13`). */
export function encodeOnnxModel(spec: OnnxGraphSpec): Uint8Array {
  validate(spec);
  const model = new ProtoWriter();
  model.int(1, IR_VERSION);
  model.string(2, spec.producer ?? "oci-batch-inference");
  model.string(3, "0.1.0");
  if (spec.docString !== undefined) model.string(6, spec.docString);
  model.message(7, (graph) => {
    spec.nodes.forEach((node, index) => {
      graph.message(1, (n) => {
        for (const input of node.inputs) n.string(1, input);
        for (const output of node.outputs) n.string(2, output);
        n.string(3, node.name ?? `${node.opType}_${index}`);
        n.string(4, node.opType);
        for (const [name, attr] of Object.entries(node.attributes ?? {})) {
          n.message(5, (a) => writeAttribute(a, name, attr));
        }
      });
    });
    graph.string(2, spec.name);
    for (const t of spec.initializers) {
      graph.message(5, (tensor) => writeTensor(tensor, t));
    }
    for (const input of spec.inputs) graph.message(11, (v) => writeValueInfo(v, input));
    for (const output of spec.outputs) graph.message(12, (v) => writeValueInfo(v, output));
  });
  model.message(8, (opset) => {
    opset.string(1, "");
    opset.int(2, spec.opset ?? DEFAULT_OPSET);
  });
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    model.message(14, (entry) => {
      entry.string(1, key);
      entry.string(2, value);
    });
  }
  return model.finish();
}
