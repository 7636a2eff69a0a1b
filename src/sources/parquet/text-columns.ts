/**
 * The text fast paths (BYTE_ARRAY STRING/UTF8/ENUM/JSON, flat, PLAIN or dictionary,
 * required or nullable): a column chunk → strings, each value sliced from the page
 * once (categories, text), or → UTF-8 bytes and offsets, never strings (keys, which
 * go to the output as they are; done on the decode thread and transferred).
 */
import { PipelineError } from "../../core/errors.ts";
import type { Utf8Column } from "../record-source.ts";
import {
  type ChunkInfo,
  dictionaryIndexes,
  isDictionary,
  unsupported,
  walkPages,
} from "./pages.ts";

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
