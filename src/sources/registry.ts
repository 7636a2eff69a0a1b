/**
 * Source kinds: where a job's records come from, chosen by its input format — byte
 * ranges of CSV/JSON Lines, objects listed under a prefix, Parquet row groups. A kind
 * plans a job's partitions at split time and opens one partition's records in a
 * worker (see record-source.ts for positions and blocks).
 *
 * Adding a kind: a module exporting a {@link SourceModule}, its format in
 * `InputFormat` (src/core/records.ts), and one entry in {@link SOURCES}.
 */
import type { InputFormat, InputIdentity, JobRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import { lineSourceModule } from "./line-kind.ts";
import { objectListSourceModule } from "./objects/kind.ts";
import { parquetSourceModule } from "./parquet/kind.ts";
import type { RecordSource } from "./record-source.ts";
import type { SourceModule, SourceOptions } from "./source-module.ts";

export type {
  ColumnNeeds,
  PlannedInput,
  SourceModule,
  SourceOptions,
} from "./source-module.ts";

const SOURCES: readonly SourceModule[] = [
  lineSourceModule,
  objectListSourceModule,
  parquetSourceModule,
];

/** The source kind that reads `format`. */
export function sourceModule(format: InputFormat): SourceModule {
  const found = SOURCES.find((s) => s.formats.includes(format));
  if (!found) throw new Error(`no record source reads input format "${format}"`);
  return found;
}

/** The records of partition `partition` of `job`. */
export function sourceFor(
  store: ObjectStore,
  job: JobRecord,
  partition: { start: number; end: number; startIsRecordStart?: boolean },
  options: SourceOptions,
): RecordSource {
  return sourceModule(job.input.format).open(store, job, partition, options);
}

/** The input as people name it: `bucket/object`, or `bucket/prefix` for an object list. */
export function inputLabel(input: InputIdentity): string {
  return input.objects
    ? `${input.objects.bucket}/${input.objects.prefix}`
    : `${input.bucket}/${input.object}`;
}
