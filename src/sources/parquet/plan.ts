/**
 * Parquet partition planning for the splitter: read the footer with one ranged GET
 * and group whole row groups into partitions by the compressed bytes of the columns
 * the model needs (and a row cap). A row group decodes whole, so it is never split;
 * a position is a row index, a partition is a row range [start, end).
 */
import type { FileMetaData } from "hyparquet";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import { checkParquetColumns, type ParquetColumn, parquetColumns } from "./columns.ts";
import { openParquetObject, readParquetFooter } from "./object-file.ts";

/** One partition: rows [start, end) = row groups [firstGroup, endGroup). */
export interface ParquetPartition {
  index: number;
  start: number;
  end: number;
  firstGroup: number;
  endGroup: number;
  /** Compressed bytes of the needed columns in these row groups. */
  bytes: number;
}

/** The plan of one Parquet input. */
export interface ParquetPlan {
  bucket: string;
  name: string;
  etag: string;
  size: number;
  rows: number;
  rowGroups: number;
  columns: ParquetColumn[];
  partitions: ParquetPartition[];
}

/** Partition sizing. */
export interface ParquetPlanOptions {
  /** Columns the task reads (features, keys, text); all flat columns when absent. */
  columns?: readonly string[];
  /** Target compressed bytes of needed columns per partition (default 64 MiB). */
  partitionBytes?: number;
  /** Most rows per partition (default 1,000,000); a bigger row group still gets one. */
  partitionRows?: number;
}

/** Row groups with their first row and the needed columns' compressed bytes. */
export function rowGroupSpans(
  metadata: FileMetaData,
  columns: readonly string[],
): { firstRow: number; rows: number; bytes: number }[] {
  const wanted = new Set(columns);
  let firstRow = 0;
  return metadata.row_groups.map((rg) => {
    const rows = Number(rg.num_rows);
    let bytes = 0;
    for (const chunk of rg.columns) {
      const path = chunk.meta_data?.path_in_schema;
      if (path && wanted.has(path[0] as string))
        bytes += Number(chunk.meta_data?.total_compressed_size ?? 0);
    }
    const span = { firstRow, rows, bytes };
    firstRow += rows;
    return span;
  });
}

/** Group row groups into partitions (pure; {@link planParquet} reads the footer first). */
export function partitionRowGroups(
  spans: { firstRow: number; rows: number; bytes: number }[],
  options: ParquetPlanOptions = {},
): ParquetPartition[] {
  const maxBytes = options.partitionBytes ?? 64 * 1024 * 1024;
  const maxRows = options.partitionRows ?? 1_000_000;
  if (!(maxBytes > 0) || !(maxRows > 0)) {
    throw new InvalidArgumentError("partitionBytes and partitionRows must be positive");
  }
  const partitions: ParquetPartition[] = [];
  let open: ParquetPartition | undefined;
  spans.forEach((g, i) => {
    if (g.rows === 0) return;
    if (open && open.bytes + g.bytes <= maxBytes && open.end - open.start + g.rows <= maxRows) {
      open.end += g.rows;
      open.endGroup = i + 1;
      open.bytes += g.bytes;
      return;
    }
    open = {
      index: partitions.length,
      start: g.firstRow,
      end: g.firstRow + g.rows,
      firstGroup: i,
      endGroup: i + 1,
      bytes: g.bytes,
    };
    partitions.push(open);
  });
  return partitions;
}

/** Read the footer of `bucket/name` and plan its partitions. */
export async function planParquet(
  store: ObjectStore,
  bucket: string,
  name: string,
  options: ParquetPlanOptions = {},
): Promise<ParquetPlan> {
  const { file, etag } = await openParquetObject(store, bucket, name);
  const what = `Parquet input ${bucket}/${name}`;
  const metadata = await readParquetFooter(file, what);
  const names =
    options.columns ??
    parquetColumns(metadata)
      .filter((c) => !c.nested)
      .map((c) => c.name);
  const columns = checkParquetColumns(metadata, names, what);
  return {
    bucket,
    name,
    etag,
    size: file.byteLength,
    rows: Number(metadata.num_rows),
    rowGroups: metadata.row_groups.length,
    columns,
    partitions: partitionRowGroups(rowGroupSpans(metadata, names), options),
  };
}
