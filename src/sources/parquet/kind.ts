/**
 * Parquet as a source kind: the footer is read with one ranged GET at split time and
 * whole row groups are grouped into partitions (positions are row indexes); a worker
 * reads only the columns the task needs, by ranged reads.
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import type { SourceModule } from "../registry.ts";
import { ParquetSource } from "./parquet-source.ts";
import { planParquet } from "./plan.ts";

/** One Parquet object. */
export const parquetSourceModule: SourceModule = {
  formats: ["parquet"],
  async plan(store, spec, needs) {
    const name = spec.input.object ?? "";
    const plan = await planParquet(store, spec.input.bucket, name, {
      ...(needs.columns.length > 0 ? { columns: needs.columns } : {}),
      partitionBytes: spec.partitionBytes,
      ...(spec.partitionRecords !== undefined ? { partitionRows: spec.partitionRecords } : {}),
    });
    if (plan.rows === 0) {
      throw new InvalidArgumentError(
        `input object ${spec.input.bucket}/${name} has no rows: nothing to score`,
      );
    }
    return {
      input: {
        bucket: plan.bucket,
        object: plan.name,
        etag: plan.etag,
        size: plan.size,
        format: "parquet",
        columns: plan.columns.map((c) => c.name),
        dataStart: 0,
        parquet: { rows: plan.rows, columns: plan.columns },
      },
      identity: { bucket: plan.bucket, object: plan.name, etag: plan.etag },
      ranges: plan.partitions.map((p) => ({ start: p.start, end: p.end })),
      discard: async () => {},
    };
  },
  open: (store, job, partition) =>
    new ParquetSource({
      store,
      bucket: job.input.bucket,
      name: job.input.object,
      etag: job.input.etag,
      columns: job.input.columns,
      start: partition.start,
      end: partition.end,
    }),
};
