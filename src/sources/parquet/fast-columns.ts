/**
 * Typed fast paths for flat Parquet columns, beside hyparquet's general decoder:
 *
 * - numbers (DOUBLE, FLOAT, INT32, INT64 read as model features): a column chunk →
 *   a Float32Array with NaN for null, which is what a number feature is (the model
 *   takes float32; null and NaN are both "missing"), at half the memory of float64;
 * - strings (BYTE_ARRAY STRING/UTF8: keys, categories, text): → (string | null)[],
 *   each value sliced from the page once, or UTF-8 bytes for keys (text-columns.ts).
 *
 * Both read required or nullable columns, PLAIN or dictionary-encoded, data pages v1
 * and v2, any codec hyparquet decompresses. Why: hyparquet decodes value by value
 * into plain JS arrays through generic level assembly (2-4 M values/s here), which
 * made Parquet input slower than CSV. Here definition levels and dictionary indexes
 * decode into typed arrays, and values go from the page straight to the output.
 * Anything else (booleans, decimals, dates, raw binary, nested, delta encodings)
 * stays with hyparquet.
 */
import type { ColumnMetaData } from "hyparquet";
import { PipelineError } from "../../core/errors.ts";
import {
  type ChunkInfo,
  dictionaryIndexes,
  isDictionary,
  unsupported,
  walkPages,
} from "./pages.ts";

const NUMBER_TYPES = new Set(["DOUBLE", "FLOAT", "INT32", "INT64"]);
/** Converted/logical types that are still plain numbers. */
const PLAIN_NUMBERS = new Set([undefined, "INT_8", "INT_16", "INT_32", "INT_64", "INTEGER"]);
const TEXT = new Set(["STRING", "UTF8", "ENUM", "JSON"]);

/** A column as the fast paths see it. */
interface FlatColumn {
  type?: string | undefined;
  logical?: string | undefined;
  nested: boolean;
}

/** Can {@link decodeNumericChunk} read this column? */
export function isFastNumeric(column: FlatColumn): boolean {
  return !column.nested && NUMBER_TYPES.has(column.type ?? "") && PLAIN_NUMBERS.has(column.logical);
}

/** Can {@link decodeStringChunk} read this column? */
export function isFastString(column: FlatColumn): boolean {
  return !column.nested && column.type === "BYTE_ARRAY" && TEXT.has(column.logical ?? "");
}

/** Bytes per PLAIN value of a fast-path type. */
function widthOf(type: string): number {
  return type === "DOUBLE" || type === "INT64" ? 8 : 4;
}

/** A reader of PLAIN value k at `view[pos + k·width]` as a number (little-endian, any alignment). */
function plainReader(view: DataView, pos: number, type: string): (k: number) => number {
  switch (type) {
    case "DOUBLE":
      return (k) => view.getFloat64(pos + 8 * k, true);
    case "FLOAT":
      return (k) => view.getFloat32(pos + 4 * k, true);
    case "INT32":
      return (k) => view.getInt32(pos + 4 * k, true);
    default:
      // INT64 as two int32 halves: exact up to 2^53, with no BigInt per value.
      return (k) =>
        view.getInt32(pos + 8 * k + 4, true) * 4294967296 + view.getUint32(pos + 8 * k, true);
  }
}

/** Typed arrays use the platform's byte order; Parquet's PLAIN values are little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The first `count` PLAIN values of a page as a typed array of their type (DOUBLE,
 * FLOAT, INT32): a view where the page is aligned for it, else an aligned copy.
 */
function typedView(
  values: Uint8Array,
  type: string,
  count: number,
): Float64Array | Float32Array | Int32Array {
  const width = widthOf(type);
  let bytes = values;
  if (values.byteOffset % width !== 0) bytes = values.slice(0, count * width);
  const { buffer, byteOffset } = bytes;
  if (type === "DOUBLE") return new Float64Array(buffer, byteOffset, count);
  if (type === "FLOAT") return new Float32Array(buffer, byteOffset, count);
  return new Int32Array(buffer, byteOffset, count);
}

/** `n` PLAIN values of `type` at `page[pos..]`, as float64 (a dictionary page). */
function plainValues(page: Uint8Array, pos: number, n: number, type: string): Float64Array {
  if (page.length - pos < n * widthOf(type)) {
    throw new PipelineError("INTERNAL", `Parquet page holds fewer than its ${n} values`);
  }
  const read = plainReader(new DataView(page.buffer, page.byteOffset, page.byteLength), pos, type);
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) out[k] = read(k);
  return out;
}

/**
 * Decode a whole numeric column chunk (`bytes` from its first page to its end) into
 * a Float32Array of the row group's rows (rounded as a CSV number is); null is NaN.
 */
export function decodeNumericChunk(bytes: Uint8Array, chunk: ChunkInfo): Float32Array {
  const { meta } = chunk;
  const type = meta.type;
  const out = new Float32Array(chunk.rows);
  let dictionary: Float64Array | undefined;
  const scratch = { indexes: new Uint32Array(0) };
  walkPages(
    bytes,
    chunk,
    (page, n) => {
      dictionary = plainValues(page, 0, n, type);
    },
    (page, row) => {
      const { values, count, defs, present } = page;
      if (page.encoding === "PLAIN") {
        if (values.length < present * widthOf(type)) {
          throw new PipelineError(
            "INTERNAL",
            `Parquet page holds fewer than its ${present} values`,
          );
        }
        // Straight from the page into the output: no intermediate array per page.
        const view = new DataView(values.buffer, values.byteOffset, values.byteLength);
        if (!defs && type !== "INT64" && LITTLE_ENDIAN) {
          // No nulls: one native conversion (TypedArray.set) over a typed view of the page.
          out.set(typedView(values, type, count), row);
        } else {
          const read = plainReader(view, 0, type);
          let k = 0;
          for (let i = 0; i < count; i++) out[row + i] = !defs || defs[i] ? read(k++) : Number.NaN;
        }
      } else if (isDictionary(page.encoding)) {
        const dict = dictionary;
        if (!dict) throw new PipelineError("INTERNAL", "Parquet dictionary page missing");
        const indexes = dictionaryIndexes(page, scratch);
        let k = 0;
        for (let i = 0; i < count; i++) {
          out[row + i] =
            !defs || defs[i] ? (dict[indexes[k++] as number] ?? Number.NaN) : Number.NaN;
        }
      } else throw unsupported(page.encoding, meta);
    },
  );
  return out;
}

/** Encodings the fast paths read; a chunk with any other goes to hyparquet. */
export function fastEncodings(meta: ColumnMetaData): boolean {
  return meta.encodings.every((e) =>
    ["PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE"].includes(e),
  );
}
