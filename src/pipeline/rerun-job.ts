import { NotFoundError } from "../core/errors.ts";
import { type SplitResult, type SplitterDeps, splitJob } from "./splitter.ts";

/**
 * Score a job's input again as a new job: the same spec (input object as it is
 * now, model, options) under a new `runTag`, which is part of the job id. The
 * same tag again finds that job instead of creating a third (idempotent like
 * every split). Default tag: `rerun-<UTC time>`.
 */
export async function rerunAsNewJob(
  deps: SplitterDeps,
  jobId: string,
  runTag?: string,
): Promise<SplitResult & { rerunOf: string; runTag: string }> {
  const previous = await deps.checkpoints.getJob(jobId);
  if (!previous) throw new NotFoundError(`no job ${jobId} to rerun: list jobs with \`jobs\``);
  const tag = runTag ?? `rerun-${new Date(deps.now()).toISOString().replace(/[^0-9TZ]/g, "")}`;
  const { runTag: _old, ...spec } = previous.value.spec;
  const result = await splitJob(deps, { ...spec, runTag: tag });
  return { ...result, rerunOf: jobId, runTag: tag };
}
