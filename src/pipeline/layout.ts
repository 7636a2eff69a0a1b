import type { JobRecord, OutputFormat } from "../core/records.ts";

/** Where a job's objects live in the output bucket. */
export interface JobLayout {
  bucket: string;
  root: string;
  partsPrefix: string;
  output: string;
  errors: string;
  manifest: string;
  report: string;
}

/** Object names for a job: `<prefix>/<jobId>/{predictions.*,errors.jsonl,manifest.json,parts/}`. */
export function jobLayout(job: Pick<JobRecord, "jobId" | "spec">): JobLayout {
  const { bucket, prefix, format } = job.spec.output;
  const root = prefix === "" ? job.jobId : `${prefix}/${job.jobId}`;
  return {
    bucket,
    root,
    partsPrefix: `${root}/parts/`,
    output: `${root}/predictions.${format}`,
    errors: `${root}/errors.jsonl`,
    manifest: `${root}/manifest.json`,
    report: `${root}/report.html`,
  };
}

/** A part object's name: partition, chunk sequence and claim epoch (stale epochs are never merged). */
export function partName(
  layout: JobLayout,
  partition: number,
  seq: number,
  epoch: number,
  format: OutputFormat,
): string {
  const p = String(partition).padStart(5, "0");
  const s = String(seq).padStart(6, "0");
  return `${layout.partsPrefix}p${p}/c${s}-e${epoch}.${format}`;
}

/** The errors part that goes with a part. */
export function errorPartName(
  layout: JobLayout,
  partition: number,
  seq: number,
  epoch: number,
): string {
  const p = String(partition).padStart(5, "0");
  const s = String(seq).padStart(6, "0");
  return `${layout.partsPrefix}p${p}/c${s}-e${epoch}.errors.jsonl`;
}
