/**
 * The Parquet decode thread's entry (see decode-thread.ts): decodes the column
 * chunks of a ranged read it is handed (numbers to float32, key text to UTF-8
 * bytes), and hands the columns back, transferred.
 */
import { parentPort } from "node:worker_threads";
import type { ColumnMetaData } from "hyparquet";
import type { Utf8Column } from "../record-source.ts";
import { decodeNumericChunk } from "./fast-columns.ts";
import { loadZstd, PARQUET_COMPRESSORS } from "./object-file.ts";
import { decodeUtf8Chunk } from "./text-columns.ts";

/** One request: a span of the file and the chunks in it. */
export interface DecodeRequest {
  id: number;
  buffer: ArrayBuffer;
  rows: number;
  chunks: {
    name: string;
    meta: ColumnMetaData;
    nullable: boolean;
    start: number;
    end: number;
    /** Numbers (float32) or text as UTF-8 bytes. */
    as: "number" | "utf8";
  }[];
}

/** A decoded column as the thread hands it back. */
export type DecodedColumn = Float32Array | Utf8Column;

/** The buffers of a decoded column, to transfer. */
export function buffersOf(column: DecodedColumn): ArrayBuffer[] {
  if (column instanceof Float32Array) return [column.buffer as ArrayBuffer];
  const { data, starts, ends, nulls } = column;
  return [
    data.buffer,
    starts.buffer,
    ends.buffer,
    ...(nulls ? [nulls.buffer] : []),
  ] as ArrayBuffer[];
}

const ready = loadZstd();
// Up and loaded: until this arrives, callers decode inline rather than wait for it.
void ready.then(() => parentPort?.postMessage({ ready: true }));
parentPort?.on("message", async (req: DecodeRequest) => {
  try {
    await ready;
    const bytes = new Uint8Array(req.buffer);
    const out: Record<string, DecodedColumn> = {};
    for (const c of req.chunks) {
      const decode = c.as === "utf8" ? decodeUtf8Chunk : decodeNumericChunk;
      out[c.name] = decode(bytes.subarray(c.start, c.end), {
        meta: c.meta,
        nullable: c.nullable,
        rows: req.rows,
        compressors: PARQUET_COMPRESSORS,
      });
    }
    parentPort?.postMessage({ id: req.id, out }, Object.values(out).flatMap(buffersOf));
  } catch (err) {
    parentPort?.postMessage({ id: req.id, error: (err as Error).message ?? String(err) });
  }
});
