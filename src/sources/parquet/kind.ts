/**
 * Parquet as a source kind: the footer is read with one ranged GET at split time and
 * whole row groups are grouped into partitions (positions are row indexes); a worker
 * reads only the columns the task needs, by ranged reads. The Parquet reader loads
 * on first use, so a splitter that never sees Parquet doesn't pay for it at start.
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import type { RecordSource, RowBlock } from "../record-source.ts";
import type { SourceModule } from "../source-module.ts";

/** One Parquet object. */
export const parquetSourceModule: SourceModule = {
  formats: ["parquet"],
  async plan(store, spec, needs) {
    const { planParquet } = await import("./plan.ts");
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
        parquet: {
          rows: plan.rows,
          columns: plan.columns,
          numeric: needs.numeric.filter((c) => plan.columns.some((x) => x.name === c)),
          text: (needs.text ?? []).filter((c) => plan.columns.some((x) => x.name === c)),
        },
      },
      identity: { bucket: plan.bucket, object: plan.name, etag: plan.etag },
      ranges: plan.partitions.map((p) => ({ start: p.start, end: p.end })),
      discard: async () => {},
    };
  },
  open(store, job, partition): RecordSource {
    let source: Promise<import("./parquet-source.ts").ParquetSource> | undefined;
    const load = () => {
      source ??= import("./parquet-source.ts").then(
        ({ ParquetSource }) =>
          new ParquetSource({
            store,
            bucket: job.input.bucket,
            name: job.input.object,
            etag: job.input.etag,
            columns: job.input.columns,
            numeric: job.input.parquet?.numeric ?? [],
            text: job.input.parquet?.text ?? [],
            start: partition.start,
            end: partition.end,
          }),
      );
      return source;
    };
    return {
      async *read(from: number): AsyncIterable<RowBlock> {
        yield* (await load()).read(from);
      },
      warm(from: number): void {
        load().then(
          (s) => s.warm(from),
          () => {}, // the import's failure surfaces from read
        );
      },
    };
  },
};
