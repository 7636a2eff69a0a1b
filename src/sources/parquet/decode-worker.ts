/**
 * The Parquet decode thread's entry (see decode-thread.ts): decodes numeric column
 * chunks of a ranged read it is handed, and hands the float32 columns back.
 */
import { parentPort } from "node:worker_threads";
import type { ColumnMetaData } from "hyparquet";
import { decodeNumericChunk } from "./fast-columns.ts";
import { loadZstd, PARQUET_COMPRESSORS } from "./object-file.ts";

/** One request: a span of the file and the numeric chunks in it. */
export interface DecodeRequest {
  id: number;
  buffer: ArrayBuffer;
  rows: number;
  chunks: { name: string; meta: ColumnMetaData; nullable: boolean; start: number; end: number }[];
}

const ready = loadZstd();
parentPort?.on("message", async (req: DecodeRequest) => {
  try {
    await ready;
    const bytes = new Uint8Array(req.buffer);
    const out: Record<string, Float32Array> = {};
    for (const c of req.chunks) {
      out[c.name] = decodeNumericChunk(bytes.subarray(c.start, c.end), {
        meta: c.meta,
        nullable: c.nullable,
        rows: req.rows,
        compressors: PARQUET_COMPRESSORS,
      });
    }
    parentPort?.postMessage(
      { id: req.id, out },
      Object.values(out).map((v) => v.buffer as ArrayBuffer),
    );
  } catch (err) {
    parentPort?.postMessage({ id: req.id, error: (err as Error).message ?? String(err) });
  }
});
