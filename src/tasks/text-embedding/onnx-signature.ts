/**
 * Reads an ONNX model's graph inputs and outputs (names, element types, shapes)
 * straight from its protobuf bytes, without creating an onnxruntime session: the
 * loader checks a model directory up front (and a splitter can, too) for the cost of
 * a scan that skips over the weights.
 */
import { ModelError } from "../../core/errors.ts";

/** A graph input or output as declared in the model. */
export interface OnnxValueSignature {
  name: string;
  /** ONNX element type name (float32, int64, …), or `type<N>` for others. */
  type: string;
  /** Declared dims: a number, a symbolic name, or undefined when unknown. */
  dims: (number | string | undefined)[];
}

/** The graph's declared interface. */
export interface OnnxSignature {
  inputs: OnnxValueSignature[];
  outputs: OnnxValueSignature[];
  /** Some initializers live outside the file (external data): not loadable from bytes. */
  externalData: boolean;
}

const ELEM_NAMES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  16: "bfloat16",
};

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError("truncated varint");
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new RangeError("varint longer than 10 bytes");
  }

  /** Calls `field(number, wire, reader-at-value)` for each field; skips what it doesn't read. */
  fields(visit: (field: number, wire: number, sub: Reader | number) => void): void {
    while (this.pos < this.end) {
      const key = this.varint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (wire === 0) visit(field, wire, this.varint());
      else if (wire === 2) {
        const len = this.varint();
        const start = this.pos;
        if (start + len > this.end) throw new RangeError("length past the end of the message");
        this.pos += len;
        visit(field, wire, new Reader(this.buf, start, start + len));
      } else if (wire === 1) this.pos += 8;
      else if (wire === 5) this.pos += 4;
      else throw new RangeError(`unsupported wire type ${wire}`);
    }
  }

  string(): string {
    return new TextDecoder().decode(this.buf.subarray(this.pos, this.end));
  }
}

function valueInfo(r: Reader): OnnxValueSignature {
  const out: OnnxValueSignature = { name: "", type: "unknown", dims: [] };
  r.fields((f, _w, v) => {
    if (f === 1 && v instanceof Reader) out.name = v.string();
    if (f !== 2 || !(v instanceof Reader)) return;
    v.fields((tf, _tw, tensor) => {
      if (tf !== 1 || !(tensor instanceof Reader)) return; // tensor_type only
      tensor.fields((ef, _ew, ev) => {
        if (ef === 1 && typeof ev === "number") out.type = ELEM_NAMES[ev] ?? `type${ev}`;
        if (ef !== 2 || !(ev instanceof Reader)) return;
        ev.fields((sf, _sw, dim) => {
          if (sf !== 1 || !(dim instanceof Reader)) return;
          let value: number | string | undefined;
          dim.fields((df, _dw, dv) => {
            if (df === 1 && typeof dv === "number") value = dv;
            if (df === 2 && dv instanceof Reader) value = dv.string();
          });
          out.dims.push(value);
        });
      });
    });
  });
  return out;
}

/** Parse `bytes` (a ModelProto). Throws ModelError when they are not an ONNX model. */
export function readOnnxSignature(bytes: Uint8Array, where: string): OnnxSignature {
  const sig: OnnxSignature = { inputs: [], outputs: [], externalData: false };
  let sawGraph = false;
  const initializers = new Set<string>();
  try {
    new Reader(bytes, 0, bytes.length).fields((field, _wire, value) => {
      if (field !== 7 || !(value instanceof Reader)) return;
      sawGraph = true;
      value.fields((gf, _gw, gv) => {
        if (!(gv instanceof Reader)) return;
        if (gf === 11) sig.inputs.push(valueInfo(gv));
        else if (gf === 12) sig.outputs.push(valueInfo(gv));
        else if (gf === 5) {
          // TensorProto.data_location (14) = 1 means EXTERNAL.
          gv.fields((tf, _tw, tv) => {
            if (tf === 8 && tv instanceof Reader) initializers.add(tv.string());
            if (tf === 14 && tv === 1) sig.externalData = true;
          });
        }
      });
    });
  } catch (err) {
    throw new ModelError(`${where} is not a readable ONNX model: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!sawGraph) throw new ModelError(`${where} is not an ONNX model (it has no graph)`);
  // Old exports (IR < 4) list initializers as graph inputs too: they are not fed.
  sig.inputs = sig.inputs.filter((i) => !initializers.has(i.name));
  return sig;
}
