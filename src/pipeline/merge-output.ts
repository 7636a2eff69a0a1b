/**
 * The merged predictions of a job, per output format, streamed: JSON Lines and CSV
 * are the committed parts concatenated in input order (CSV after one header line);
 * Parquet parts are files, so their column chunks are copied into one file whose
 * footer is rewritten (src/outputs/parquet/merge.ts). Only partitions that finished
 * contribute.
 */
import type { createHash } from "node:crypto";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import type { OutputColumn } from "../tasks/task.ts";
import type { PipelineDeps } from "./deps.ts";
import { type JobLayout, partName } from "./layout.ts";
import { readInOrder } from "./object-batches.ts";
import { csvField } from "./output-rows.ts";

type Digest = { hash: ReturnType<typeof createHash>; bytes: number };

/** What precedes the parts in a text output: the CSV header, or nothing. */
export function outputHeader(job: Pick<JobRecord, "spec">, columns: readonly string[]): string {
  return job.spec.output.format === "csv" ? `${columns.map(csvField).join(",")}\n` : "";
}

/** The output columns as typed when the job was created (types default to string for older jobs). */
export function declaredColumns(job: JobRecord): OutputColumn[] {
  return job.outputColumns.map((name, j) => ({ name, type: job.outputTypes?.[j] ?? "string" }));
}

/** Committed parts of the finished partitions, in input order, read one at a time. */
async function* partBodies(
  deps: PipelineDeps,
  layout: JobLayout,
  job: JobRecord,
  partitions: PartitionRecord[],
): AsyncGenerator<{ name: string; bytes: Buffer }> {
  for (const p of partitions) {
    if (p.state !== "done") continue;
    for (const ref of p.parts) {
      if (ref.bytes === 0) continue;
      const name = partName(layout, p.index, ref.seq, ref.epoch, job.spec.output.format);
      const chunks: Buffer[] = [];
      for await (const c of await deps.store.read(layout.bucket, name)) chunks.push(c as Buffer);
      yield { name, bytes: Buffer.concat(chunks) };
    }
  }
}

async function* concatParts(
  deps: PipelineDeps,
  layout: JobLayout,
  job: JobRecord,
  partitions: PartitionRecord[],
): AsyncGenerator<Buffer> {
  const header = outputHeader(job, job.outputColumns);
  if (header) yield Buffer.from(header);
  const parts: { name: string; bytes: number }[] = [];
  for (const p of partitions) {
    if (p.state !== "done") continue;
    for (const ref of p.parts) {
      if (ref.bytes === 0) continue;
      const name = partName(layout, p.index, ref.seq, ref.epoch, job.spec.output.format);
      parts.push({ name, bytes: ref.bytes });
    }
  }
  // A checkpoint every few thousand records makes hundreds of parts: each is opened
  // while those before it are read, not after.
  yield* readInOrder(deps.store, layout.bucket, parts);
}

/** The job's merged output as a stream of chunks; `digest` sees every byte. */
export async function* mergedOutput(
  deps: PipelineDeps,
  layout: JobLayout,
  job: JobRecord,
  partitions: PartitionRecord[],
  digest: Digest,
): AsyncGenerator<Buffer> {
  // The Parquet merge (hyparquet and its writer) loads only when a job outputs Parquet:
  // every worker and the CLI reach this module, most never merge Parquet.
  const chunks =
    job.spec.output.format === "parquet"
      ? (await import("../outputs/parquet/merge.ts")).mergeParquetParts(
          partBodies(deps, layout, job, partitions),
          declaredColumns(job),
        )
      : concatParts(deps, layout, job, partitions);
  for await (const b of chunks) {
    digest.hash.update(b);
    digest.bytes += b.length;
    yield b;
  }
}
