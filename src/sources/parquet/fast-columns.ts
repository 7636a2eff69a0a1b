/**
 * Typed fast paths for flat Parquet columns, beside hyparquet's general decoder:
 *
 * - numbers (DOUBLE, FLOAT, INT32, INT64 read as model features): a column chunk →
 *   a Float32Array with NaN for null, which is what a number feature is (the model
 *   takes float32; null and NaN are both "missing"), at half the memory of float64;
 * - strings (BYTE_ARRAY STRING/UTF8: keys, categories, text): → (string | null)[],
 *   each value sliced from the page once.
 *
 * Both read required or nullable columns, PLAIN or dictionary-encoded, data pages v1
 * and v2, any codec hyparquet decompresses. Why: hyparquet decodes value by value
 * into plain JS arrays through generic level assembly (2-4 M values/s here), which
 * made Parquet input slower than CSV. Here definition levels and dictionary indexes
 * decode into typed arrays, and values go from the page straight to the output.
 * Anything else (booleans, decimals, dates, raw binary, nested, delta encodings)
 * stays with hyparquet.
 */
import type { ColumnMetaData, Compressors } from "hyparquet";
import { parquetHeader } from "hyparquet/src/column.js";
import { decompressPage } from "hyparquet/src/datapage.js";
import { PipelineError } from "../../core/errors.ts";
import type { Utf8Column } from "../record-source.ts";

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

/**
 * Decode the RLE/bit-packed hybrid run at `buf[pos, end)` into `out[0, count)`.
 * Bit-packed groups are 8 values, least significant bit first; padding is dropped.
 */
export function decodeHybrid(
  buf: Uint8Array,
  pos: number,
  end: number,
  width: number,
  out: Uint8Array | Uint32Array,
  count: number,
): void {
  let seen = 0;
  const valueBytes = (width + 7) >> 3;
  const mask = width >= 32 ? 0xffffffff : (1 << width) - 1;
  while (seen < count) {
    if (pos >= end) {
      throw new PipelineError("INTERNAL", "Parquet page: RLE/bit-packed run ends early");
    }
    let header = 0;
    let shift = 0;
    let b: number;
    do {
      b = buf[pos++] as number;
      header += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    if (header % 2 === 1) {
      const n = Math.floor(header / 2) * 8;
      const stop = Math.min(count, seen + n);
      if (width === 1) {
        for (let i = seen; i < stop; i++) {
          const k = i - seen;
          out[i] = ((buf[pos + (k >> 3)] as number) >> (k & 7)) & 1;
        }
      } else if (width === 8) {
        for (let i = seen; i < stop; i++) out[i] = buf[pos + i - seen] as number;
      } else {
        let bitPos = pos * 8;
        for (let i = seen; i < stop; i++) {
          let v = 0;
          let got = 0;
          while (got < width) {
            const byte = buf[bitPos >> 3] as number;
            const offset = bitPos & 7;
            const take = Math.min(8 - offset, width - got);
            v += ((byte >> offset) & ((1 << take) - 1)) * 2 ** got;
            got += take;
            bitPos += take;
          }
          out[i] = v & mask;
        }
      }
      pos += (n * width) / 8;
      seen = stop === count ? count : seen + n;
    } else {
      const n = Math.floor(header / 2);
      let v = 0;
      for (let k = 0; k < valueBytes; k++) v += (buf[pos + k] as number) * 2 ** (8 * k);
      pos += valueBytes;
      out.fill(v, seen, Math.min(count, seen + n));
      seen += n;
    }
  }
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

/** What one column chunk needs besides its bytes. */
export interface ChunkInfo {
  meta: ColumnMetaData;
  /** OPTIONAL column (definition levels present, max level 1). */
  nullable: boolean;
  /** Rows in the row group. */
  rows: number;
  compressors: Compressors;
}

/** One data page, decompressed, with its definition levels decoded. */
interface DataPage {
  /** The values section (after the levels). */
  values: Uint8Array;
  encoding: string;
  /** Values in the page, nulls included. */
  count: number;
  /** Definition level per value (1 = present), or undefined when none is null. */
  defs: Uint8Array | undefined;
  /** Non-null values. */
  present: number;
}

/**
 * Walk a column chunk's pages: `dictionary` gets the decompressed dictionary page,
 * `data` each data page with its levels decoded and the row it starts at.
 */
function walkPages(
  bytes: Uint8Array,
  chunk: ChunkInfo,
  dictionary: (page: Uint8Array, n: number) => void,
  data: (page: DataPage, row: number) => void,
): void {
  const { meta, nullable, rows, compressors } = chunk;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const reader = { view, offset: 0 };
  let row = 0;
  let defs = new Uint8Array(0);
  while (row < rows && reader.offset < bytes.length) {
    const header = parquetHeader(reader);
    const body = bytes.subarray(reader.offset, reader.offset + header.compressed_page_size);
    reader.offset += header.compressed_page_size;
    let values: Uint8Array;
    let levels: Uint8Array | undefined;
    let levelsStart = 0;
    let levelsEnd = 0;
    let count: number;
    let encoding: string;
    if (header.type === "DICTIONARY_PAGE") {
      const page = decompressPage(body, header.uncompressed_page_size, meta.codec, compressors);
      dictionary(page, header.dictionary_page_header?.num_values ?? 0);
      continue;
    } else if (header.type === "DATA_PAGE") {
      const h = header.data_page_header;
      if (!h) throw new PipelineError("INTERNAL", "Parquet data page without its header");
      values = decompressPage(body, header.uncompressed_page_size, meta.codec, compressors);
      count = h.num_values;
      encoding = h.encoding;
      if (nullable) {
        const length = new DataView(values.buffer, values.byteOffset).getUint32(0, true);
        levels = values;
        levelsStart = 4;
        levelsEnd = 4 + length;
        values = values.subarray(levelsEnd);
      }
    } else if (header.type === "DATA_PAGE_V2") {
      const h = header.data_page_header_v2;
      if (!h) throw new PipelineError("INTERNAL", "Parquet data page v2 without its header");
      count = h.num_values;
      encoding = h.encoding;
      const levelBytes = h.repetition_levels_byte_length + h.definition_levels_byte_length;
      if (nullable) {
        levels = body;
        levelsStart = h.repetition_levels_byte_length;
        levelsEnd = levelBytes;
      }
      const rest = body.subarray(levelBytes);
      values =
        h.is_compressed === false
          ? rest
          : decompressPage(
              rest,
              header.uncompressed_page_size - levelBytes,
              meta.codec,
              compressors,
            );
    } else {
      continue; // an index page
    }
    if (row + count > rows) {
      throw new PipelineError(
        "INTERNAL",
        `Parquet column ${meta.path_in_schema.join(".")} has more values than its row group's ${rows} rows`,
      );
    }
    let present = count;
    if (levels) {
      if (defs.length < count) defs = new Uint8Array(count);
      decodeHybrid(levels, levelsStart, levelsEnd, 1, defs, count);
      present = 0;
      for (let i = 0; i < count; i++) present += defs[i] as number;
    }
    data({ values, encoding, count, defs: present === count ? undefined : defs, present }, row);
    row += count;
  }
  if (row !== rows) {
    throw new PipelineError(
      "INTERNAL",
      `Parquet column ${meta.path_in_schema.join(".")} ends after ${row} of ${rows} rows`,
    );
  }
}

/** Dictionary indexes of a data page's values section (a bit-width byte, then RLE runs). */
function dictionaryIndexes(page: DataPage, scratch: { indexes: Uint32Array }): Uint32Array {
  const width = page.values[0] as number;
  if (scratch.indexes.length < page.present) scratch.indexes = new Uint32Array(page.present);
  decodeHybrid(page.values, 1, page.values.length, width, scratch.indexes, page.present);
  return scratch.indexes;
}

function unsupported(encoding: string, meta: ColumnMetaData): PipelineError {
  return new PipelineError(
    "INTERNAL",
    `Parquet encoding ${encoding} is not on the fast path (column ${meta.path_in_schema.join(".")})`,
  );
}

function isDictionary(encoding: string): boolean {
  return encoding === "PLAIN_DICTIONARY" || encoding === "RLE_DICTIONARY";
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

/**
 * PLAIN BYTE_ARRAY values (a 4-byte length, then the bytes) of a page into
 * `out[at, at + count)`, null where `defs` says so.
 */
function plainStrings(
  page: Uint8Array,
  out: (string | null)[],
  at: number,
  defs: Uint8Array | undefined,
  count: number,
): void {
  const buf = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (defs && !defs[i]) {
      out[at + i] = null;
      continue;
    }
    if (pos + 4 > buf.length) {
      throw new PipelineError("INTERNAL", "Parquet page holds fewer strings than it says");
    }
    const length = buf.readUInt32LE(pos);
    pos += 4;
    if (pos + length > buf.length) {
      throw new PipelineError("INTERNAL", "Parquet page: a string runs past the page");
    }
    out[at + i] = buf.toString("utf8", pos, pos + length);
    pos += length;
  }
}

/**
 * Decode a whole text column chunk into the row group's values: strings, null for
 * null (what hyparquet gives for these columns).
 */
export function decodeStringChunk(bytes: Uint8Array, chunk: ChunkInfo): (string | null)[] {
  const { meta } = chunk;
  const out = new Array<string | null>(chunk.rows);
  let dictionary: (string | null)[] = [];
  const scratch = { indexes: new Uint32Array(0) };
  walkPages(
    bytes,
    chunk,
    (page, n) => {
      dictionary = new Array<string | null>(n);
      plainStrings(page, dictionary, 0, undefined, n);
    },
    (page, row) => {
      const { values, count, defs } = page;
      if (page.encoding === "PLAIN") plainStrings(values, out, row, defs, count);
      else if (isDictionary(page.encoding)) {
        const indexes = dictionaryIndexes(page, scratch);
        let k = 0;
        for (let i = 0; i < count; i++) {
          out[row + i] = !defs || defs[i] ? (dictionary[indexes[k++] as number] ?? null) : null;
        }
      } else throw unsupported(page.encoding, meta);
    },
  );
  return out;
}

/** Byte ranges of the PLAIN BYTE_ARRAY values of a page: `n` values from `pos`. */
function plainRanges(page: Uint8Array, n: number, starts: Int32Array, ends: Int32Array): void {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  let pos = 0;
  for (let k = 0; k < n; k++) {
    if (pos + 4 > page.length) {
      throw new PipelineError("INTERNAL", "Parquet page holds fewer strings than it says");
    }
    const length = view.getUint32(pos, true);
    pos += 4;
    if (pos + length > page.length) {
      throw new PipelineError("INTERNAL", "Parquet page: a string runs past the page");
    }
    starts[k] = pos;
    ends[k] = pos + length;
    pos += length;
  }
}

/**
 * Decode a whole text column chunk into UTF-8 bytes, never strings: a PLAIN page is
 * copied whole (its length prefixes stay, skipped by the ranges), a dictionary
 * value once per row. For key columns, which go to the output as they are; done on
 * the decode thread, then transferred.
 */
export function decodeUtf8Chunk(bytes: Uint8Array, chunk: ChunkInfo): Utf8Column {
  const { meta, rows } = chunk;
  const starts = new Int32Array(rows);
  const ends = new Int32Array(rows);
  let nulls: Uint8Array | undefined;
  let data = new Uint8Array(Math.max(64, rows * 12));
  let used = 0;
  const reserve = (n: number) => {
    if (used + n <= data.length) return;
    const next = new Uint8Array(Math.max(data.length * 2, used + n));
    next.set(data.subarray(0, used));
    data = next;
  };
  let dictionary: { page: Uint8Array; starts: Int32Array; ends: Int32Array } | undefined;
  const scratch = { indexes: new Uint32Array(0) };
  let pageStarts = new Int32Array(0);
  let pageEnds = new Int32Array(0);
  walkPages(
    bytes,
    chunk,
    (page, n) => {
      dictionary = { page, starts: new Int32Array(n), ends: new Int32Array(n) };
      plainRanges(page, n, dictionary.starts, dictionary.ends);
    },
    (page, row) => {
      const { values, count, defs, present } = page;
      if (defs) nulls ??= new Uint8Array(rows);
      let k = 0;
      if (page.encoding === "PLAIN") {
        if (pageStarts.length < present) {
          pageStarts = new Int32Array(present);
          pageEnds = new Int32Array(present);
        }
        plainRanges(values, present, pageStarts, pageEnds);
        reserve(values.length);
        data.set(values, used);
        const base = used;
        used += values.length;
        for (let i = 0; i < count; i++) {
          if (defs && !defs[i]) (nulls as Uint8Array)[row + i] = 1;
          else {
            starts[row + i] = base + (pageStarts[k] as number);
            ends[row + i] = base + (pageEnds[k] as number);
            k++;
          }
        }
      } else if (isDictionary(page.encoding)) {
        const dict = dictionary;
        if (!dict) throw new PipelineError("INTERNAL", "Parquet dictionary page missing");
        const indexes = dictionaryIndexes(page, scratch);
        const src = dict.page;
        for (let i = 0; i < count; i++) {
          if (defs && !defs[i]) {
            (nulls as Uint8Array)[row + i] = 1;
            continue;
          }
          const d = indexes[k++] as number;
          if (d >= dict.starts.length) {
            throw new PipelineError("INTERNAL", "Parquet dictionary index past the dictionary");
          }
          const from = dict.starts[d] as number;
          const n = (dict.ends[d] as number) - from;
          reserve(n);
          for (let j = 0; j < n; j++) data[used + j] = src[from + j] as number;
          starts[row + i] = used;
          used += n;
          ends[row + i] = used;
        }
      } else throw unsupported(page.encoding, meta);
    },
  );
  return { data: data.subarray(0, used), starts, ends, nulls };
}

/** Encodings the fast paths read; a chunk with any other goes to hyparquet. */
export function fastEncodings(meta: ColumnMetaData): boolean {
  return meta.encodings.every((e) =>
    ["PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE"].includes(e),
  );
}
