import type { PartitionRecord } from "../core/records.ts";
import { failedAttempts } from "./partition-attempts.ts";

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The sentence a `completed_with_errors` job carries: which partitions failed,
 * after how many attempts, and what to run. "partition 0 failed after 1
 * attempt", "partitions 2, 5 failed after 3 attempts each".
 */
export function failedPartitionsMessage(jobId: string, failed: PartitionRecord[]): string {
  const counts = failed.map(failedAttempts);
  const same = counts.every((c) => c === counts[0]);
  const n = counts[0] ?? 0;
  const which =
    failed.length === 1
      ? `partition ${failed[0]?.index} failed after ${plural(n, "attempt")}`
      : same
        ? `partitions ${failed.map((p) => p.index).join(", ")} failed after ${plural(n, "attempt")} each`
        : `partitions ${failed.map((p, i) => `${p.index} (${plural(counts[i] ?? 0, "attempt")})`).join(", ")} failed`;
  return `${which}; their records are in neither output. Fix the cause and run \`rerun ${jobId} --failed\``;
}
