import { constants } from "node:fs";
import { copyFile, mkdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { InvalidArgumentError } from "../core/errors.ts";
import type { JobRecord } from "../core/records.ts";
import { localPaths } from "../runner/local-stores.ts";

/** What `--output DIR` received: each output's path, or undefined when the job has none. */
export interface PlacedOutputs {
  output?: string;
  errors: string;
  manifest: string;
  report?: string;
}

/**
 * Copy a finished job's outputs into `dir` (`--output DIR`): independent copies —
 * a reflink where the filesystem has one, else a byte copy — never hard links, so
 * editing them can't touch the job's own output (which `verify` checks). Each file
 * is written to a temp name and renamed, so DIR never holds half a file; a file the
 * job no longer has (the predictions of a job that now failed) is removed, so DIR
 * always describes the job's latest completion.
 */
export async function placeOutputs(
  job: JobRecord,
  dataDir: string,
  dir: string,
): Promise<PlacedOutputs | undefined> {
  const r = job.result;
  if (!r) return undefined;
  const target = path.resolve(dir);
  const st = await stat(target).catch(() => undefined);
  if (st && !st.isDirectory()) {
    throw new InvalidArgumentError(
      `--output ${target} is a file: name a directory (it is created if missing)`,
    );
  }
  await mkdir(target, { recursive: true });
  const buckets = localPaths(dataDir).buckets;
  const place = async (o: { bucket: string; object: string } | undefined, name?: string) => {
    if (!o) {
      if (name) await unlink(path.join(target, name)).catch(() => undefined);
      return undefined;
    }
    const to = path.join(target, path.basename(o.object));
    const tmp = `${to}.tmp-${process.pid}`;
    await copyFile(path.join(buckets, o.bucket, o.object), tmp, constants.COPYFILE_FICLONE);
    await rename(tmp, to);
    return to;
  };
  const outputName = path.basename(r.output.object);
  const output = await place(job.state !== "failed" ? r.output : undefined, outputName);
  const errors = (await place(r.errorsOutput)) as string;
  const manifest = (await place(r.manifest)) as string;
  const report = await place(r.report);
  return { ...(output ? { output } : {}), errors, manifest, ...(report ? { report } : {}) };
}
