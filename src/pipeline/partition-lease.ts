import { ConflictError, LeaseLostError } from "../core/errors.ts";
import type { PartitionRecord } from "../core/records.ts";
import type { CheckpointStore, Versioned } from "../ports/checkpoint-store.ts";

/**
 * This worker's claim on a partition: the row as last written, and the version
 * to compare-and-set against. Writes are serialized so a heartbeat and a
 * checkpoint commit never race each other; a lost CAS means another worker
 * claimed the partition (a higher epoch), and every later write is refused.
 */
export class PartitionLease {
  private row: Versioned<PartitionRecord>;
  private chain: Promise<unknown> = Promise.resolve();
  private lostReason: string | undefined;

  constructor(
    private readonly checkpoints: CheckpointStore,
    row: Versioned<PartitionRecord>,
  ) {
    this.row = row;
  }

  /** The row as this worker last committed it. */
  get value(): PartitionRecord {
    return this.row.value;
  }

  /** Why the lease was lost, or undefined while held. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /** Mark lost (e.g. the queue refused our receipt). */
  markLost(reason: string): void {
    this.lostReason ??= reason;
  }

  /** Throw LeaseLostError if the lease is gone. */
  assertHeld(): void {
    if (this.lostReason) throw new LeaseLostError(this.lostReason);
  }

  /** Compare-and-set the row with `update(current)`; throws LeaseLostError if someone else wrote. */
  update(update: (current: PartitionRecord) => PartitionRecord): Promise<PartitionRecord> {
    const run = async (): Promise<PartitionRecord> => {
      this.assertHeld();
      const next = update(this.row.value);
      try {
        this.row = await this.checkpoints.updatePartition(next, this.row.version);
      } catch (err) {
        if (err instanceof ConflictError) {
          this.markLost(
            `partition ${next.index} of ${next.jobId} was claimed by another worker (epoch ${next.epoch} is stale)`,
          );
          throw new LeaseLostError(this.lostReason as string, { cause: err });
        }
        throw err;
      }
      return this.row.value;
    };
    const result = this.chain.then(run, run);
    this.chain = result.catch(() => undefined);
    return result;
  }
}
