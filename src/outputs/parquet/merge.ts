/**
 * Merge per-chunk Parquet parts into one Parquet file without decoding them: a
 * Parquet file is "PAR1", column chunks, a footer (thrift FileMetaData), its length
 * and "PAR1", so parts can't be concatenated as bytes — but their column chunks can
 * be copied as they are, one row group per part, if the footer is rewritten with
 * every offset shifted to where the bytes landed. Memory holds one part and the
 * merged footer (a few hundred bytes per row group), never the whole output.
 *
 * Trade-off: row groups stay the size of a checkpoint chunk (e.g. 256 images or
 * 50,000 rows). Readers handle that well; re-encoding into larger row groups would
 * cost a full decode and encode of every value.
 */
import { type ColumnChunk, type FileMetaData, parquetMetadata, type RowGroup } from "hyparquet";
import { ByteWriter } from "hyparquet-writer";
import { writeMetadata } from "hyparquet-writer/src/metadata.js";
import { PipelineError } from "../../core/errors.ts";
import type { OutputColumn } from "../../tasks/task.ts";
import { ParquetRowSink } from "./row-sink.ts";

const MAGIC = Buffer.from("PAR1", "latin1");

/** Footer and data range of one part. */
function partFooter(bytes: Uint8Array, what: string): { metadata: FileMetaData; dataEnd: number } {
  const n = bytes.length;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, n);
  if (n < 12 || !buf.subarray(0, 4).equals(MAGIC) || !buf.subarray(n - 4).equals(MAGIC)) {
    throw new PipelineError("INTERNAL", `${what} is not a Parquet file (no PAR1 at both ends)`);
  }
  const footerLength = buf.readUInt32LE(n - 8);
  const dataEnd = n - 8 - footerLength;
  if (dataEnd < 4)
    throw new PipelineError("INTERNAL", `${what}: footer length ${footerLength} is impossible`);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + n) as ArrayBuffer;
  return { metadata: parquetMetadata(ab), dataEnd };
}

function shift(v: bigint | undefined, by: bigint): bigint | undefined {
  return v === undefined ? undefined : v + by;
}

/** A copy of a column chunk's metadata with offsets moved by `by`; page indexes dropped. */
function moveChunk(c: ColumnChunk, by: bigint): ColumnChunk {
  const m = c.meta_data;
  return {
    ...c,
    file_offset: c.file_offset + by,
    offset_index_offset: undefined,
    offset_index_length: undefined,
    column_index_offset: undefined,
    column_index_length: undefined,
    meta_data: m && {
      ...m,
      data_page_offset: m.data_page_offset + by,
      dictionary_page_offset: shift(m.dictionary_page_offset, by),
      index_page_offset: shift(m.index_page_offset, by),
      bloom_filter_offset: shift(m.bloom_filter_offset, by),
    },
  };
}

function sameSchema(a: FileMetaData, b: FileMetaData): boolean {
  const key = (m: FileMetaData) =>
    JSON.stringify(
      m.schema.map((e) => [e.name, e.type, e.repetition_type, e.num_children, e.converted_type]),
    );
  return key(a) === key(b);
}

/**
 * The merged file as a stream of chunks (hand it to `ObjectStore.put` via
 * `Readable.from`). `parts` in output order; `columns` make the empty file when
 * there are no parts. Every part must have the first part's schema.
 */
export async function* mergeParquetParts(
  parts: AsyncIterable<{ name: string; bytes: Uint8Array }>,
  columns: readonly OutputColumn[],
): AsyncGenerator<Buffer> {
  let first: FileMetaData | undefined;
  const rowGroups: RowGroup[] = [];
  let rows = 0n;
  let offset = 4n;
  yield Buffer.from(MAGIC);
  for await (const part of parts) {
    const { metadata, dataEnd } = partFooter(part.bytes, part.name);
    if (!first) first = metadata;
    else if (!sameSchema(first, metadata)) {
      throw new PipelineError(
        "INTERNAL",
        `part ${part.name} has a different schema from the first part`,
      );
    }
    if (metadata.row_groups.length === 0) continue;
    // Column chunks (and any bloom filters) sit in [4, dataEnd); page indexes are dropped
    // from the footer, so their bytes are harmless padding if a part has them.
    const by = offset - 4n;
    for (const rg of metadata.row_groups) {
      rowGroups.push({
        ...rg,
        file_offset: shift(rg.file_offset, by),
        columns: rg.columns.map((c) => moveChunk(c, by)),
      });
    }
    rows += metadata.num_rows;
    yield Buffer.from(part.bytes.buffer, part.bytes.byteOffset + 4, dataEnd - 4);
    offset += BigInt(dataEnd - 4);
  }
  const template = first ?? partFooter(new ParquetRowSink(columns).finish(), "empty part").metadata;
  const writer = new ByteWriter();
  writeMetadata(writer, {
    version: template.version,
    schema: template.schema,
    num_rows: rows,
    row_groups: rowGroups,
    key_value_metadata: template.key_value_metadata,
    created_by: template.created_by,
    metadata_length: 0,
  });
  writer.appendUint32(0x31524150);
  yield Buffer.from(writer.getBytes());
}
