/**
 * A corpus refresh on the embedded default: the corpus is a local directory (staged
 * as the objects under a prefix, as `run --input DIR` does: changed files re-placed,
 * removed files' objects deleted) or a prefix already in the local store. The
 * request goes through the same code as on OCI; here a pool of worker processes
 * then scores the refresh's job, and the refresh is finished when the job is
 * (by its merge, or by this driver if the merge's worker died before finishing it).
 * `watchLocalCorpus` runs it again whenever the directory changes, coalescing bursts.
 */
import { watch } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { InvalidArgumentError } from "../core/errors.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import { stageLocalDirectory } from "../runner/local-media-input.ts";
import { type DriveOptions, driveLocalJob } from "../runner/local-runner.ts";
import { type LocalPipeline, openLocalPipeline } from "../runner/local-stores.ts";
import { providersFrom } from "../runner/worker-config.ts";
import { checkModelOpens } from "../tasks/registry.ts";
import type { CorpusHead, RefreshSettings } from "./head.ts";
import { readHead } from "./head.ts";
import type { CorpusRef } from "./layout.ts";
import { advance, type RefreshOutcome, refreshLayout, requestRefresh } from "./refresh.ts";

/** Options of a local refresh. */
export interface LocalRefreshOptions extends DriveOptions {
  /** A directory of documents, or BUCKET/PREFIX in the local store. */
  corpus: string;
  /** The text-embedding model's descriptor. */
  descriptor: string;
  output?: { bucket: string; prefix: string };
  job?: RefreshSettings["job"];
  /** Where a directory corpus is staged (default "input"). */
  inputBucket?: string;
}

/** What a local refresh ended with. */
export interface LocalRefreshResult {
  /** What the first request did (the drive may go on to a follow-up refresh). */
  requested: RefreshOutcome;
  head: CorpusHead | undefined;
  settings: RefreshSettings;
  /** Files placed and removed when the corpus is a directory. */
  staged?: { files: number; placed: number; removed: number };
  interrupted: boolean;
}

/** The corpus a `--corpus` argument names: a directory (staged) or BUCKET/PREFIX. */
async function corpusOf(
  pipeline: LocalPipeline,
  corpus: string,
  bucket: string,
): Promise<{ ref: CorpusRef; staged?: LocalRefreshResult["staged"] }> {
  const st = await stat(corpus).catch(() => undefined);
  if (st?.isDirectory()) {
    const s = await stageLocalDirectory(pipeline, bucket, corpus);
    return {
      ref: { bucket: s.bucket, prefix: s.prefix },
      staged: { files: s.files, placed: s.placed, removed: s.removed },
    };
  }
  const slash = corpus.indexOf("/");
  if (st || slash <= 0) {
    throw new InvalidArgumentError(
      `--corpus must be a directory of documents or BUCKET/PREFIX/ of objects, got "${corpus}"`,
    );
  }
  return { ref: { bucket: corpus.slice(0, slash), prefix: corpus.slice(slash + 1) } };
}

/**
 * Refresh a corpus on the embedded default and drive the refresh (and a follow-up
 * one, if the corpus went dirty meanwhile) to the end.
 */
export async function refreshLocal(options: LocalRefreshOptions): Promise<LocalRefreshResult> {
  const pipeline = openLocalPipeline(options.dataDir, { log: options.log });
  try {
    const { ref, staged } = await corpusOf(
      pipeline,
      options.corpus,
      options.inputBucket ?? "input",
    );
    const settings: RefreshSettings = {
      corpus: ref,
      output: options.output ?? { bucket: "output", prefix: "embeddings" },
      model: path.resolve(options.descriptor),
      ...(options.job ? { job: options.job } : {}),
    };
    const layout = refreshLayout(settings);
    const deps = {
      ...pipeline,
      checkModel: async (model: Parameters<typeof checkModelOpens>[0]) => {
        await checkModelOpens(model, {
          executionProviders: providersFrom(process.env.ORT_EXECUTION_PROVIDERS),
        });
      },
    };
    const requested = await requestRefresh(deps, settings);
    let interrupted = false;
    // Drive whatever is in flight: this refresh's job, then a follow-up's.
    let lastJob: string | undefined;
    for (;;) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const a = (await readHead(pipeline.store, layout)).head?.active;
      if (!a?.plan) break; // nothing in flight, or another process is planning it
      if (a.jobId) {
        const job = (await pipeline.checkpoints.getJob(a.jobId))?.value;
        const done = job && TERMINAL_JOB_STATES.includes(job.state) && job.completionPublished;
        if (!done) {
          const driven = await driveLocalJob(pipeline, a.jobId, options);
          if (driven.interrupted) {
            interrupted = true;
            break;
          }
        } else if (lastJob === a.jobId) {
          throw new InvalidArgumentError(
            `refresh of ${settings.corpus.bucket}/${settings.corpus.prefix} is stuck on finished job ${a.jobId}; see the log`,
          );
        }
        lastJob = a.jobId;
      }
      await advance(deps, layout);
    }
    return {
      requested,
      head: (await readHead(pipeline.store, layout)).head,
      settings,
      ...(staged ? { staged } : {}),
      interrupted,
    };
  } finally {
    pipeline.close();
  }
}

/**
 * Refresh a directory corpus now and again after every change to it, until the
 * signal: changes that arrive while a refresh runs make one more refresh after it.
 */
export async function watchLocalCorpus(
  options: LocalRefreshOptions & { debounceMs?: number },
  onRefreshed: (r: LocalRefreshResult) => void,
): Promise<void> {
  const st = await stat(options.corpus).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new InvalidArgumentError(`--watch needs --corpus DIRECTORY, got "${options.corpus}"`);
  }
  let dirty = true;
  let wake: (() => void) | undefined;
  const watcher = watch(options.corpus, { recursive: true }, () => {
    dirty = true;
    wake?.();
  });
  const stopped = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    while (!options.signal?.aborted) {
      if (!dirty) {
        await Promise.race([new Promise<void>((r) => (wake = r)), stopped]);
        continue;
      }
      // Let a burst of writes settle, then take everything it changed in one refresh.
      do {
        dirty = false;
        await Promise.race([new Promise((r) => setTimeout(r, options.debounceMs ?? 300)), stopped]);
      } while (dirty && !options.signal?.aborted);
      if (options.signal?.aborted) break;
      onRefreshed(await refreshLocal(options));
    }
  } finally {
    watcher.close();
  }
}
