/**
 * `batch-infer refresh`: keep a corpus's embeddings fresh. On the embedded default it
 * refreshes a directory (or BUCKET/PREFIX in the local store) and drives the
 * embedding job with the local pool; `--watch` keeps doing so as the directory
 * changes. With `--backend oci` it asks for a refresh the way the corpus Events
 * rule does (the workers on OKE embed, the job's merge finishes the refresh).
 */
import path from "node:path";
import { InvalidArgumentError } from "../core/errors.ts";
import { createLogger, type LogLevel } from "../core/log.ts";
import type { CorpusHead, RefreshSettings } from "../refresh/head.ts";
import { corpusLayout } from "../refresh/layout.ts";
import {
  type LocalRefreshResult,
  refreshLocal,
  watchLocalCorpus,
} from "../refresh/local-refresh.ts";
import { requestRefresh } from "../refresh/refresh.ts";
import { openPipelineFromEnv } from "../runner/backend.ts";
import { localPaths } from "../runner/local-stores.ts";
import { parsePositiveInt } from "./args.ts";
import { startForeground } from "./foreground.ts";

/** The flags `refresh` reads. */
export interface RefreshFlags {
  corpus?: string | undefined;
  model?: string | undefined;
  watch?: boolean | undefined;
  backend: "local" | "oci";
  dataDir: string;
  outputBucket?: string | undefined;
  outputPrefix?: string | undefined;
  workers?: string | undefined;
  threads?: string | undefined;
  checkpointEvery?: string | undefined;
  partitionRecords?: string | undefined;
  visibility?: string | undefined;
  maxAttempts?: string | undefined;
  logLevel?: LogLevel | undefined;
  json?: boolean | undefined;
}

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function jobOptions(f: RefreshFlags): RefreshSettings["job"] {
  const job: NonNullable<RefreshSettings["job"]> = {};
  const n = (flag: string, v: string | undefined) => parsePositiveInt(flag, v);
  const checkpointEvery = n("checkpoint-every", f.checkpointEvery);
  const partitionRecords = n("partition-records", f.partitionRecords);
  const visibilitySeconds = n("visibility", f.visibility);
  const maxAttempts = n("max-attempts", f.maxAttempts);
  if (checkpointEvery !== undefined) job.checkpointEvery = checkpointEvery;
  if (partitionRecords !== undefined) job.partitionRecords = partitionRecords;
  if (visibilitySeconds !== undefined) job.visibilitySeconds = visibilitySeconds;
  if (maxAttempts !== undefined) job.maxAttempts = maxAttempts;
  return job;
}

/** One generation as people read it. */
function printHead(head: CorpusHead | undefined, dataDir: string, local: boolean): void {
  const g = head?.current;
  if (!head || !g) {
    out("no generation yet: the corpus has no documents, or its first refresh is still running");
    return;
  }
  const c = g.counts;
  out(
    `corpus ${head.corpus.bucket}/${head.corpus.prefix} generation ${g.generation} (${head.model?.name}@${head.model?.version}, dimension ${head.model?.dimension})`,
  );
  out(
    `  documents ${g.documents}: ${c.new} new, ${c.changed} changed, ${c.unchanged} unchanged, ${c.deleted} deleted, ${c.failed} failed`,
  );
  const where = (object: string) =>
    local ? path.join(localPaths(dataDir).buckets, "output", object) : object;
  out(`  embeddings ${where(g.embeddings)}`);
  out(`  delta      ${where(g.delta)}`);
  out(`  state      ${where(g.state)}`);
  if (c.failed > 0) out(`  failed     ${where(g.failed)} (retried by the next refresh)`);
  if (head.active) out(`  a refresh of generation ${head.active.generation} is in flight`);
}

/** Run `refresh`; returns the exit code. */
export async function cmdRefresh(f: RefreshFlags): Promise<number> {
  if (!f.corpus) {
    throw new InvalidArgumentError(
      "refresh needs --corpus DIRECTORY (a folder of documents) or --corpus BUCKET/PREFIX/",
    );
  }
  if (!f.model) {
    throw new InvalidArgumentError(
      "refresh needs --model DESCRIPTOR.json of a text-embedding model (see `npx tsx scripts/gen-text-model.ts`)",
    );
  }
  const output = {
    bucket: f.outputBucket ?? "output",
    prefix: f.outputPrefix ?? "embeddings",
  };
  const job = jobOptions(f);
  if (f.backend === "oci") {
    if (f.watch)
      throw new InvalidArgumentError(
        "--watch watches a local directory; on OCI the corpus Events rule fires the refresh function",
      );
    const slash = f.corpus.indexOf("/");
    if (slash <= 0)
      throw new InvalidArgumentError(`--corpus must be BUCKET/PREFIX/ on OCI, got "${f.corpus}"`);
    const settings: RefreshSettings = {
      corpus: { bucket: f.corpus.slice(0, slash), prefix: f.corpus.slice(slash + 1) },
      output,
      model: f.model,
      job,
    };
    const log = createLogger({ level: f.logLevel ?? "warn" });
    const p = await openPipelineFromEnv({ ...process.env, BATCH_INFER_BACKEND: "oci" }, { log });
    try {
      const outcome = await requestRefresh(p, settings);
      if (f.json) out(JSON.stringify(outcome, null, 2));
      else {
        out(`refresh ${outcome.action}: corpus ${f.corpus}, generation ${outcome.generation}`);
        if (outcome.active?.jobId)
          out(`  embedding job ${outcome.active.jobId} (the workers on OKE embed it)`);
        out(`  head ${corpusLayout(settings.corpus, output).head} in bucket ${output.bucket}`);
      }
      return 0;
    } finally {
      p.close();
    }
  }
  const { reporter, log, signal } = startForeground(f.logLevel);
  const options = {
    corpus: f.corpus,
    descriptor: f.model,
    output,
    job,
    dataDir: f.dataDir,
    workers: parsePositiveInt("workers", f.workers) ?? 2,
    intraOpThreads: parsePositiveInt("threads", f.threads) ?? 1,
    log,
    signal,
    onProgress: (p: Parameters<typeof reporter.update>[0]) => {
      if (!f.json) reporter.update(p);
    },
    onWorkerOutput: (line: string) => reporter.log(line),
  };
  const report = (r: LocalRefreshResult) => {
    if (!f.json) reporter.done();
    if (f.json) {
      out(JSON.stringify({ requested: r.requested, staged: r.staged, head: r.head }));
      return;
    }
    if (r.staged) {
      out(
        `staged ${r.staged.files} files (${r.staged.placed} new or changed, ${r.staged.removed} removed)`,
      );
    }
    out(`refresh ${r.requested.action}`);
    printHead(r.head, f.dataDir, true);
  };
  if (f.watch) {
    out(`watching ${f.corpus}: every change refreshes its embeddings (Ctrl-C to stop)`);
    await watchLocalCorpus(options, report);
    return 130;
  }
  const result = await refreshLocal(options);
  if (result.interrupted) {
    out("stopped; run the same command again to go on from the checkpoints");
    return 130;
  }
  report(result);
  return (result.head?.current?.counts.failed ?? 0) > 0 ? 3 : 0;
}
