/**
 * A Parquet object in the object store as hyparquet's AsyncBuffer: every `slice` is
 * one ranged GET, so reading the footer or a few column chunks never downloads the
 * file. Counts requests and bytes so tests and the benchmark can see what was read.
 */

import zlib from "node:zlib";
import { type Compressors, type FileMetaData, parquetMetadataAsync } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { ZSTDDecoder } from "zstddec";
import { PipelineError, PreconditionFailedError } from "../../core/errors.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import { readBytes } from "../read-bytes.ts";

/**
 * Decompressors for hyparquet: gzip, Brotli, LZ4 from hyparquet-compressors (Snappy
 * is built in), ZSTD from Node's own zlib where it has it (Node 22.15+, 23.8+:
 * native libzstd, ~3× the WebAssembly decoder's speed) or else zstddec (libzstd as
 * WebAssembly) once it is loaded — several times faster than the pure-JS fzstd it
 * replaces. ZSTD is what DuckDB, Spark and pyarrow users often choose, and on
 * float data its decoding is most of the cost of reading a Parquet file.
 */
export const PARQUET_COMPRESSORS: Compressors = { ...compressors };

let zstdReady: Promise<void> | undefined;

/** Node's native ZSTD decompression, where this Node has it. */
type NativeZstd = (input: Uint8Array, options: { maxOutputLength: number }) => Buffer;

/** Load the ZSTD decoder (once per process); until then fzstd serves. */
export function loadZstd(): Promise<void> {
  zstdReady ??= (async () => {
    const native = (zlib as unknown as { zstdDecompressSync?: NativeZstd }).zstdDecompressSync;
    if (typeof native === "function") {
      PARQUET_COMPRESSORS.ZSTD = (input: Uint8Array, outputLength: number) =>
        native(input, { maxOutputLength: outputLength });
      return;
    }
    const decoder = new ZSTDDecoder();
    await decoder.init();
    PARQUET_COMPRESSORS.ZSTD = (input: Uint8Array, outputLength: number) =>
      decoder.decode(input, outputLength);
  })();
  return zstdReady;
}

/** An object opened for ranged reads. */
export interface ParquetObject {
  byteLength: number;
  slice(start: number, end?: number): Promise<ArrayBuffer>;
  /** GETs and bytes read so far. */
  stats: { requests: number; bytes: number };
}

/**
 * Open `bucket/name` for ranged reads. With `etag`, the object must still be the one
 * the job was planned on: a replaced file would mix row groups of two versions.
 */
export async function openParquetObject(
  store: ObjectStore,
  bucket: string,
  name: string,
  etag?: string,
): Promise<{ file: ParquetObject; etag: string }> {
  await loadZstd();
  const info = await store.head(bucket, name);
  if (!info) throw new PipelineError("NOT_FOUND", `Parquet input ${bucket}/${name} does not exist`);
  if (etag !== undefined && info.etag !== etag) {
    throw new PreconditionFailedError(
      `Parquet input ${bucket}/${name} changed after the job was planned (etag ${etag} → ${info.etag}); submit the job again for the new version`,
    );
  }
  const stats = { requests: 0, bytes: 0 };
  const file: ParquetObject = {
    byteLength: info.size,
    stats,
    async slice(start: number, end = info.size): Promise<ArrayBuffer> {
      const buf = await readBytes(store, bucket, name, { start, end });
      stats.requests++;
      stats.bytes += buf.length;
      // hyparquet wants an ArrayBuffer of exactly this range: a buffer the read made
      // for itself alone is one already (no copy of a row group's megabytes).
      if (buf.byteOffset === 0 && buf.buffer.byteLength === buf.length) {
        return buf.buffer as ArrayBuffer;
      }
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    },
  };
  return { file, etag: info.etag };
}

/**
 * First read at the end of the file: enough for the footer of most files (a footer
 * holds ~100-300 bytes per column chunk); a bigger one costs a second GET.
 */
const FOOTER_FETCH_BYTES = 64 * 1024;

/** Read the footer (one ranged GET for most files; two when the footer is large). */
export async function readParquetFooter(file: ParquetObject, what: string): Promise<FileMetaData> {
  try {
    return await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH_BYTES });
  } catch (err) {
    throw new PipelineError(
      "INVALID_ARGUMENT",
      `${what} is not a readable Parquet file: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
