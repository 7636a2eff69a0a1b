/**
 * A partition row's attempt history and the transitions a worker makes to it:
 * claim, hand back, error, give up. Pure functions of the row, so the rules (what
 * counts against `maxAttempts`, how an attempt left open is closed) live in one place.
 */
import { describeError, redactSecrets } from "../core/errors.ts";
import type { Attempt, PartitionRecord } from "../core/records.ts";

/** Longest failure detail kept in a partition row, its events and the logs. */
const MAX_DETAIL_CHARS = 2000;

/** What a claim writes into the attempt it finds still open: its worker vanished. */
const LOST_DETAIL = "worker stopped without handing back (killed or stalled)";

/**
 * A failure as one line for the partition row, events and logs: credentials an
 * error message may quote are redacted, and the length is bounded so that a
 * verbose error can't bloat rows or push an event past its size limit.
 */
export function failureDetail(err: unknown): string {
  const text = redactSecrets(describeError(err));
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}

/**
 * Failed attempts in the current run: crashed/stalled (never ended), lost or
 * errored. Graceful hand-backs don't count; attempts before a `rerun --failed` don't either.
 */
export function failedAttempts(p: PartitionRecord): number {
  const from = p.retryFromEpoch ?? 0;
  return p.attempts.filter(
    (a) => a.epoch > from && (!a.endedAt || a.outcome === "lost" || a.outcome === "error"),
  ).length;
}

function endOpenAttempt(
  attempts: Attempt[],
  at: string,
  outcome: Attempt["outcome"],
  detail?: string,
): Attempt[] {
  return attempts.map((a) =>
    a.endedAt ? a : { ...a, endedAt: at, outcome, ...(detail ? { detail } : {}) },
  );
}

/** `worker` claims the row: a new epoch and attempt; an attempt left open was lost. */
export function claimedRow(p: PartitionRecord, worker: string, at: string): PartitionRecord {
  const epoch = p.epoch + 1;
  return {
    ...p,
    state: "running",
    epoch,
    owner: worker,
    attempts: [
      ...endOpenAttempt(p.attempts, at, "lost", LOST_DETAIL),
      { epoch, worker, startedAt: at, fromOffset: p.offset },
    ],
    updatedAt: at,
  };
}

/** The worker stops gracefully: the partition waits for the next worker at its checkpoint. */
export function handedBackRow(p: PartitionRecord, at: string): PartitionRecord {
  return {
    ...p,
    state: "pending",
    owner: undefined,
    attempts: endOpenAttempt(
      p.attempts,
      at,
      "handed_back",
      "worker stopping (preemption or scale-down)",
    ),
    updatedAt: at,
  };
}

/** The attempt failed with `detail` (it counts against maxAttempts). */
export function erroredRow(p: PartitionRecord, detail: string, at: string): PartitionRecord {
  return {
    ...p,
    lastError: detail,
    attempts: endOpenAttempt(p.attempts, at, "error", detail),
    updatedAt: at,
  };
}

/** Given up after too many failed attempts; an attempt still open was lost. */
export function failedRow(p: PartitionRecord, reason: string, at: string): PartitionRecord {
  return {
    ...p,
    state: "failed",
    owner: undefined,
    lastError: reason,
    attempts: endOpenAttempt(p.attempts, at, "lost", LOST_DETAIL),
    updatedAt: at,
  };
}
