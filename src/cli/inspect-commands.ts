/** The commands that read a job: status, jobs, events and verify. */
import path from "node:path";
import { InvalidArgumentError, NotFoundError } from "../core/errors.ts";

import { thousands } from "../core/numbers.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import { verifyJob } from "../pipeline/verify.ts";
import { summarize } from "../runner/local-runner.ts";
import { out, type Values, withPipeline } from "./cli-options.ts";
import { idleJobHint } from "./job-commands.ts";
import { forUser, resolveEventType } from "./messages.ts";
import { dataDirFlag } from "./paths.ts";
import { compactNumber, progressLine } from "./progress.ts";

/** A job's partitions, attempts and progress. */
export async function cmdStatus(v: Values, jobId: string | undefined): Promise<number> {
  if (!jobId) throw new InvalidArgumentError("status needs a JOB_ID (see `batch-infer jobs`)");
  return withPipeline(v, async (p) => {
    const row = await p.checkpoints.getJob(jobId);
    if (!row)
      throw new NotFoundError(
        `no job ${jobId} in ${path.resolve(v["data-dir"] ?? ".batch-infer")}: list jobs with \`batch-infer jobs\``,
      );
    const job = row.value;
    const parts = await p.checkpoints.readPartitions(jobId);
    const created = Date.parse(job.createdAt);
    const end = TERMINAL_JOB_STATES.includes(job.state) ? Date.parse(job.updatedAt) : Date.now();
    const prog = summarize(job, parts, created, end, 0);
    // Partitions leased right now = workers at work; with none, an ETA would never arrive.
    // (On OCI, GetStats needs `read queues`: without it, status shows what it showed before.)
    const leased = TERMINAL_JOB_STATES.includes(job.state)
      ? 0
      : await p.queue.stats().then(
          (st) => st.inFlight,
          () => undefined,
        );
    const idle =
      leased === undefined
        ? undefined
        : idleJobHint(job, leased, p.backend, dataDirFlag(v["data-dir"]));
    if (leased !== undefined) prog.workers = leased;
    if (idle) {
      delete prog.etaSeconds;
      prog.rate = 0;
    }
    if (v.json) {
      out(JSON.stringify({ job, progress: prog, partitions: parts }, null, 2));
      return 0;
    }
    out(`job ${job.jobId}  ${job.state}  run ${job.runAttempt}`);
    out(
      `  input  ${job.input.bucket}/${job.input.object} (${compactNumber(job.input.size)}B, etag ${job.input.etag})`,
    );
    out(`  model  ${job.model.name}@${job.model.version} sha256 ${job.model.sha256.slice(0, 12)}`);
    out(`  ${progressLine(prog, 20)}`);
    if (idle) out(`  ${idle}`);
    if (job.error) out(`  ${forUser(job.error)}`);
    out("");
    out("  part  state     records    bad  progress  attempts  last");
    for (const x of parts) {
      const span = x.end - x.start;
      const pct =
        x.state === "done"
          ? 100
          : span === 0
            ? 0
            : ((Math.min(x.end, x.offset) - x.start) / span) * 100;
      const last = x.attempts.at(-1);
      const lastText = x.lastError ?? (last ? `${last.worker} ${last.outcome ?? "running"}` : "");
      out(
        `  ${String(x.index).padStart(4)}  ${x.state.padEnd(8)} ${String(x.records).padStart(8)} ${String(x.errors).padStart(6)}  ${pct.toFixed(1).padStart(6)}%  ${String(x.attempts.length).padStart(8)}  ${lastText.slice(0, 80)}`,
      );
    }
    return 0;
  });
}

/** Recent jobs. */
export async function cmdJobs(v: Values): Promise<number> {
  return withPipeline(v, async (p) => {
    const jobs = (await p.checkpoints.listJobs({ limit: 50 })).map((r) => r.value);
    if (v.json) {
      out(JSON.stringify(jobs, null, 2));
      return 0;
    }
    if (jobs.length === 0)
      out("no jobs yet: start one with `batch-infer run --input FILE --model DESCRIPTOR.json`");
    for (const j of jobs) {
      out(
        `${j.jobId}  ${j.state.padEnd(21)} ${j.createdAt}  ${j.input.bucket}/${j.input.object}  ${j.model.name}@${j.model.version}  ${j.result ? `${j.result.records} records` : ""}`,
      );
    }
    return 0;
  });
}

/** The event log, optionally of one job or type. */
export async function cmdEvents(v: Values): Promise<number> {
  return withPipeline(v, async (p) => {
    // On OCI this reads the completion stream from its oldest retained message.
    const events = await p.eventLog.read({
      ...(v.job ? { jobId: v.job } : {}),
      ...(v.type ? { eventType: resolveEventType(v.type) } : {}),
    });
    for (const e of events) {
      out(v.json ? JSON.stringify(e) : `${e.eventTime}  ${e.eventType}  ${JSON.stringify(e.data)}`);
    }
    return 0;
  });
}

/** Prove a finished job's exactly-once promise; exit 1 when a check fails. */
export async function cmdVerify(v: Values, jobId: string | undefined): Promise<number> {
  if (!jobId) throw new InvalidArgumentError("verify needs a JOB_ID (see `batch-infer jobs`)");
  return withPipeline(v, async (p) => {
    const row = await p.checkpoints.getJob(jobId);
    if (!row) throw new NotFoundError(`no job ${jobId}: list jobs with \`batch-infer jobs\``);
    const report = await verifyJob(p, row.value);
    if (v.json) {
      out(JSON.stringify(report, null, 2));
    } else {
      for (const c of report.checks) out(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
      out(
        report.ok
          ? `verified: each of the ${thousands(report.inputRecords)} input records is in the output exactly once (${thousands(report.scored)} scored, ${thousands(report.errors)} in errors${report.inFailedPartitions ? `, ${thousands(report.inFailedPartitions)} in failed partitions` : ""})`
          : `NOT verified: ${report.checks.find((c) => !c.ok)?.detail ?? "see above"}`,
      );
    }
    return report.ok ? 0 : 1;
  });
}
