/**
 * `run` on a directory: the files become the objects under a prefix of the input
 * bucket (src/runner/local-media-input.ts) and the job is split from that prefix,
 * with the same up-front model check as a file's job.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { type SplitResult, splitJob } from "../pipeline/splitter.ts";
import { checkModelOpens } from "../tasks/registry.ts";
import { stageLocalDirectory } from "./local-media-input.ts";
import type { LocalRunOptions } from "./local-run-options.ts";
import type { LocalPipeline } from "./local-stores.ts";
import { providersFrom } from "./worker-config.ts";

/** Split the job of a directory input; undefined when the input is not a directory. */
export async function splitLocalDirectory(
  pipeline: LocalPipeline,
  bucket: string,
  options: Pick<LocalRunOptions, "inputFile" | "descriptor" | "spec" | "log">,
): Promise<SplitResult | undefined> {
  const st = await stat(options.inputFile).catch(() => undefined);
  if (!st?.isDirectory()) return undefined;
  const staged = await stageLocalDirectory(pipeline, bucket, options.inputFile);
  options.log.info("input directory staged", { ...staged });
  return splitJob(
    {
      ...pipeline,
      checkModel: async (model) => {
        await checkModelOpens(model, {
          executionProviders: providersFrom(process.env.ORT_EXECUTION_PROVIDERS),
        });
      },
    },
    {
      ...options.spec,
      input: { bucket, prefix: staged.prefix },
      output: { bucket: "output", ...options.spec?.output },
      model: { descriptor: path.resolve(options.descriptor) },
    },
  );
}
