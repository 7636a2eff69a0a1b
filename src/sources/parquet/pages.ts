/**
 * Column chunk pages for the typed fast paths (fast-columns.ts, text-columns.ts):
 * page headers walked, pages decompressed, definition levels and dictionary
 * indexes decoded from the RLE/bit-packed hybrid into typed arrays.
 */
import type { ColumnMetaData, Compressors } from "hyparquet";
import { parquetHeader } from "hyparquet/src/column.js";
import { decompressPage } from "hyparquet/src/datapage.js";
import { PipelineError } from "../../core/errors.ts";

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
export interface DataPage {
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
export function walkPages(
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
export function dictionaryIndexes(page: DataPage, scratch: { indexes: Uint32Array }): Uint32Array {
  const width = page.values[0] as number;
  if (scratch.indexes.length < page.present) scratch.indexes = new Uint32Array(page.present);
  decodeHybrid(page.values, 1, page.values.length, width, scratch.indexes, page.present);
  return scratch.indexes;
}

export function unsupported(encoding: string, meta: ColumnMetaData): PipelineError {
  return new PipelineError(
    "INTERNAL",
    `Parquet encoding ${encoding} is not on the fast path (column ${meta.path_in_schema.join(".")})`,
  );
}

export function isDictionary(encoding: string): boolean {
  return encoding === "PLAIN_DICTIONARY" || encoding === "RLE_DICTIONARY";
}
