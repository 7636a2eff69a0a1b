import { describeError, LeaseLostError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { QueueMessage, TaskQueue } from "../ports/task-queue.ts";

/**
 * A worker's hold on one delivered queue message: the visibility it was given, kept
 * alive by heartbeats, and the rule that a worker which no longer holds the message
 * never deletes or changes it.
 *
 * "Holds" is judged on the worker's own clock as well as by the queue: a lease runs
 * from when the request that set it was sent (the queue counts from when it got it,
 * later), and once that deadline passes the message may be visible again — possibly
 * not yet redelivered, so the queue might still accept our receipt. Deleting it then
 * would leave its partition with no message at all (a job that hangs for ever), so
 * an expired lease is treated exactly like a stale receipt.
 */
export class MessageLease {
  private deadline: number;
  private lostReason: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private onLost: ((why: string) => void) | undefined;

  constructor(
    private readonly queue: TaskQueue,
    readonly message: QueueMessage,
    /** Epoch ms when the receive that delivered it was sent, and the visibility it asked for. */
    receivedAt: number,
    visibilitySeconds: number,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {
    this.deadline = receivedAt + visibilitySeconds * 1000;
  }

  /** Why the message is no longer ours, or undefined while held. */
  get lost(): string | undefined {
    if (!this.lostReason && this.now() >= this.deadline) {
      this.markLost(
        `the queue lease expired at ${new Date(this.deadline).toISOString()} (the worker was stalled); the message may be redelivered`,
      );
    }
    return this.lostReason;
  }

  private markLost(why: string): void {
    if (this.lostReason) return;
    this.lostReason = why;
    this.log.warn("queue lease lost: this worker will not touch the message again", {
      reason: why,
    });
    this.onLost?.(why);
  }

  /** Hide the message for `seconds` from now; false (and lost) when it was no longer ours. */
  async extend(seconds: number): Promise<boolean> {
    if (this.lost) return false;
    const sentAt = this.now();
    try {
      await this.queue.changeVisibility(this.message.receipt, seconds);
    } catch (err) {
      if (err instanceof LeaseLostError) {
        this.markLost(err.message);
        return false;
      }
      throw err;
    }
    this.deadline = sentAt + seconds * 1000;
    return true;
  }

  /**
   * Heartbeat: extend to `seconds` every third of it until `stop()`; `onLost` hears
   * (once) when the message is no longer ours.
   */
  startHeartbeat(seconds: number, onLost: (why: string) => void): void {
    this.stopHeartbeat();
    this.onLost = onLost;
    if (this.lostReason) {
      onLost(this.lostReason);
      return;
    }
    this.timer = setInterval(
      () => {
        this.extend(seconds).catch((err: unknown) =>
          this.log.warn("heartbeat failed; retrying at the next one", {
            error: describeError(err),
          }),
        );
      },
      Math.max(250, (seconds * 1000) / 3),
    );
    this.timer.unref();
  }

  stopHeartbeat(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Acknowledge (delete) the message, if it is still ours; a lost one is left to its next holder. */
  async ack(): Promise<void> {
    this.stopHeartbeat();
    if (this.lost) return;
    try {
      await this.queue.delete(this.message.receipt);
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
      this.markLost(err.message);
    }
  }

  /** Make the message visible again after `seconds` (0 = now), if it is still ours. Never throws. */
  async release(seconds: number): Promise<void> {
    this.stopHeartbeat();
    if (this.lost) return;
    try {
      await this.queue.changeVisibility(this.message.receipt, seconds);
    } catch (err) {
      if (err instanceof LeaseLostError) this.markLost(err.message);
      else
        this.log.warn("could not hand the message back; it returns when its lease expires", {
          error: describeError(err),
        });
    }
  }

  /** Dead-letter the message with `reason`, if it is still ours. */
  async deadLetter(reason: string): Promise<void> {
    this.stopHeartbeat();
    if (this.lost) return;
    try {
      await this.queue.deadLetter(this.message.receipt, reason);
    } catch (err) {
      if (err instanceof LeaseLostError) this.markLost(err.message);
      else throw err;
    }
  }
}
