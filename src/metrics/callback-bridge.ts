/**
 * Feeds a WorkerObserver from the PartitionWorker's existing `onClaim` and
 * `onCommit` callbacks, until the worker loop calls the observer itself:
 * claims and releases, queue wait (free → next claim), committed records and
 * bad records, and attempts that end "done". Batch timings, commit latency,
 * the other attempt outcomes and the execution provider need calls from
 * inside the loop and the scorer.
 */
import type { PartitionRecord } from "../core/records.ts";
import type { WorkerObserver } from "./worker-observer.ts";

/** The two callbacks of WorkerOptions, bound to an observer. */
export interface ObserverCallbacks {
  onClaim(claim: { jobId: string; partition?: number } | undefined): void;
  onCommit(p: PartitionRecord): void;
}

/** Callbacks that report to `observer`; `now` in ms (injectable for tests). */
export function observerCallbacks(
  observer: WorkerObserver,
  now: () => number = () => performance.now(),
): ObserverCallbacks {
  let freeSince = now();
  // Parts of the current claim already reported: a claim bumps the epoch, so the
  // parts carrying it are exactly this attempt's chunks (earlier ones were resumed from).
  let reported = 0;
  return {
    onClaim(claim) {
      if (claim) {
        observer.queueWait(now() - freeSince);
        observer.claimed(claim.jobId, claim.partition);
        reported = 0;
      } else {
        observer.released();
        freeSince = now();
      }
    },
    onCommit(p) {
      const mine = p.parts.filter((part) => part.epoch === p.epoch);
      let records = 0;
      let badRecords = 0;
      for (const part of mine.slice(reported)) {
        records += part.records;
        badRecords += part.errors;
      }
      reported = mine.length;
      observer.checkpointCommitted({ records, badRecords });
      if (p.state === "done") observer.attemptEnded("done");
    },
  };
}
