import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { InvalidArgumentError, LeaseLostError } from "../../core/errors.ts";
import type {
  QueueMessage,
  QueueStats,
  ReceiveOptions,
  TaskQueue,
} from "../../ports/task-queue.ts";
import { checkMessages, checkSeconds, MAX_MESSAGE_BYTES } from "../port-contract.ts";

export { MAX_MESSAGE_BYTES };

import { guarded, LazyDatabase } from "./sqlite.ts";

/** Longest long poll; OCI Queue caps `timeoutInSeconds` at 20 as well. */
export const MAX_WAIT_SECONDS = 20;
/** Channel of messages sent without one. */
export const DEFAULT_CHANNEL = "default";

/** Options for {@link SqliteTaskQueue}. */
export interface SqliteTaskQueueOptions {
  /** SQLite file; several queues (and processes) can share it. */
  path: string;
  /** Queue name within the file. */
  queue: string;
  /** Dead-letter a message instead of delivering it more than this many times; 0 = never. */
  maxDeliveries: number;
  /** Clock in epoch ms, for visibility (tests inject a fake one). Long-poll waits use real time. */
  now?: () => number;
  /** How often a long poll re-checks the table. Default 50 ms. */
  pollIntervalMs?: number;
}

/** A dead-lettered message, as {@link SqliteTaskQueue.listDeadLetters} reports it. */
export interface DeadLetter {
  id: string;
  channel: string;
  body: string;
  deliveryCount: number;
  deadLetteredAt: Date;
  reason: string;
}

interface MessageRow {
  id: number;
  channel: string;
  body: string;
  visible_at: number;
  delivery_count: number;
  receipt: string | null;
  dead_lettered_at: number | null;
  dead_letter_reason: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  channel TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  receipt TEXT,
  dead_lettered_at INTEGER,
  dead_letter_reason TEXT
);
CREATE INDEX IF NOT EXISTS messages_live ON messages (queue, id) WHERE dead_lettered_at IS NULL;
CREATE INDEX IF NOT EXISTS messages_dead ON messages (queue, dead_lettered_at)
  WHERE dead_lettered_at IS NOT NULL;
`;

/** The message id a receipt was issued for (receipts are `${id}.${deliveryCount}.${random}`). */
function receiptId(receipt: string): number | undefined {
  const match = /^(\d+)\.\d+\.[0-9a-f]+$/.exec(receipt);
  const id = match ? Number(match[1]) : Number.NaN;
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * TaskQueue over a SQLite table, safe for several processes sharing the file.
 *
 * Every state change runs in a `BEGIN IMMEDIATE` transaction, so two consumers
 * can't both claim a message. Each delivery gets a fresh receipt; only the current
 * receipt may delete, extend or dead-letter, so a worker whose lease expired and
 * whose message went to someone else can't touch the new delivery.
 */
export class SqliteTaskQueue implements TaskQueue {
  /** Queue name within the file. */
  readonly queue: string;
  /** Delivery limit before dead-lettering (0 = none). */
  readonly maxDeliveries: number;
  private readonly now: () => number;
  private readonly pollIntervalMs: number;
  private readonly store: LazyDatabase;

  constructor(options: SqliteTaskQueueOptions) {
    if (!options.path) throw new InvalidArgumentError("SqliteTaskQueue: path is required");
    if (!options.queue) throw new InvalidArgumentError("SqliteTaskQueue: queue name is required");
    if (!Number.isSafeInteger(options.maxDeliveries) || options.maxDeliveries < 0) {
      throw new InvalidArgumentError("SqliteTaskQueue: maxDeliveries must be an integer >= 0");
    }
    this.queue = options.queue;
    this.maxDeliveries = options.maxDeliveries;
    this.now = options.now ?? Date.now;
    this.pollIntervalMs = Math.max(1, options.pollIntervalMs ?? 50);
    this.store = new LazyDatabase(options.path, SCHEMA);
  }

  /** Enqueue in order; returns ids (increasing, so FIFO follows send order). */
  async send(messages: { body: string; channel?: string }[]): Promise<string[]> {
    checkMessages(messages);
    if (messages.length === 0) return [];
    const insert = this.store.sql(
      `INSERT INTO messages (queue, channel, body, created_at, visible_at)
       VALUES (?, ?, ?, ?, ?)`,
    );
    return this.store.immediate(`send to queue ${this.queue}`, () => {
      const now = this.now();
      return messages.map((m) =>
        String(
          insert.run(this.queue, m.channel ?? DEFAULT_CHANNEL, m.body, now, now).lastInsertRowid,
        ),
      );
    });
  }

  /** Claim up to `max` visible messages, oldest first; long-polls up to `waitSeconds`. */
  async receive(options: ReceiveOptions): Promise<QueueMessage[]> {
    const { max, visibilitySeconds, channel } = options;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new InvalidArgumentError(`receive: max must be an integer >= 1, got ${max}`);
    }
    checkSeconds("receive: visibilitySeconds", visibilitySeconds);
    checkSeconds("receive: waitSeconds", options.waitSeconds ?? 0);
    const waitMs = Math.min(options.waitSeconds ?? 0, MAX_WAIT_SECONDS) * 1000;
    // Real time for the wait: an injected clock may stand still in tests.
    const deadline = performance.now() + waitMs;
    for (;;) {
      if (options.signal?.aborted) return [];
      const got = this.claim(max, visibilitySeconds, channel);
      const left = deadline - performance.now();
      if (got.length > 0 || left <= 0 || options.signal?.aborted) return got;
      try {
        await sleep(Math.min(this.pollIntervalMs, left), undefined, {
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch {
        return []; // aborted while waiting: nothing was claimed
      }
    }
  }

  private claim(max: number, visibilitySeconds: number, channel?: string): QueueMessage[] {
    const select = this.store.sql<MessageRow>(
      `SELECT id, channel, body, delivery_count FROM messages
       WHERE queue = ? AND dead_lettered_at IS NULL AND visible_at <= ? AND id > ?
       ${channel === undefined ? "" : "AND channel = ?"}
       ORDER BY id LIMIT ?`,
    );
    const deliver = this.store.sql(
      `UPDATE messages SET delivery_count = ?, visible_at = ?, receipt = ? WHERE id = ?`,
    );
    const bury = this.store.sql(
      `UPDATE messages SET dead_lettered_at = ?, dead_letter_reason = ?, receipt = NULL
       WHERE id = ?`,
    );
    return this.store.immediate(`receive from queue ${this.queue}`, () => {
      const now = this.now();
      const visibleAt = now + Math.round(visibilitySeconds * 1000);
      const out: QueueMessage[] = [];
      // Loop because rows over the delivery limit are buried, not returned, and
      // shouldn't make a receive come back short while deliverable rows remain.
      // `after` moves past rows already handled (with visibility 0 they still match).
      let after = 0;
      for (;;) {
        const want = max - out.length;
        const params: unknown[] = [this.queue, now, after];
        if (channel !== undefined) params.push(channel);
        params.push(want);
        const rows = select.all(...params);
        for (const row of rows) {
          after = row.id;
          if (this.maxDeliveries > 0 && row.delivery_count >= this.maxDeliveries) {
            bury.run(
              now,
              `delivered ${row.delivery_count} times (maxDeliveries ${this.maxDeliveries})`,
              row.id,
            );
            continue;
          }
          const deliveryCount = row.delivery_count + 1;
          const receipt = `${row.id}.${deliveryCount}.${randomBytes(8).toString("hex")}`;
          deliver.run(deliveryCount, visibleAt, receipt, row.id);
          out.push({
            id: String(row.id),
            body: row.body,
            receipt,
            deliveryCount,
            channel: row.channel,
          });
        }
        if (rows.length < want || out.length >= max) return out;
      }
    });
  }

  /**
   * Extend (or with 0, end) the current delivery's invisibility. Only while that
   * delivery is still in flight: once it has expired, someone may already hold it.
   */
  async changeVisibility(receipt: string, visibilitySeconds: number): Promise<void> {
    checkSeconds("changeVisibility: visibilitySeconds", visibilitySeconds);
    this.store.immediate(`changeVisibility in queue ${this.queue}`, () => {
      const now = this.now();
      const row = this.inFlight(receipt, "changeVisibility");
      this.store
        .sql("UPDATE messages SET visible_at = ? WHERE id = ?")
        .run(now + Math.round(visibilitySeconds * 1000), row.id);
    });
  }

  /**
   * Acknowledge the current delivery (removes the message). Only while it is in
   * flight: once its visibility expired the message belongs to whoever receives it
   * next, even if no one has yet (stricter than a queue that only compares receipts).
   */
  async delete(receipt: string): Promise<void> {
    this.store.immediate(`delete in queue ${this.queue}`, () => {
      const row = this.inFlight(receipt, "delete");
      this.store.sql("DELETE FROM messages WHERE id = ?").run(row.id);
    });
  }

  /** Dead-letter the current delivery now, with `reason` (in flight only, like delete). */
  async deadLetter(receipt: string, reason: string): Promise<void> {
    this.store.immediate(`deadLetter in queue ${this.queue}`, () => {
      const row = this.inFlight(receipt, "deadLetter");
      this.store
        .sql(
          `UPDATE messages SET dead_lettered_at = ?, dead_letter_reason = ?, receipt = NULL
         WHERE id = ?`,
        )
        .run(this.now(), String(reason), row.id);
    });
  }

  /** Depth for the scaler: visible, in flight, dead-lettered. */
  async stats(): Promise<QueueStats> {
    return guarded(`stats of queue ${this.queue}`, () => {
      const now = this.now();
      const row = this.store
        .sql<{
          visible: number | null;
          inFlight: number | null;
          dead: number | null;
        }>(
          `SELECT
             SUM(CASE WHEN dead_lettered_at IS NULL AND visible_at <= ? THEN 1 ELSE 0 END) AS visible,
             SUM(CASE WHEN dead_lettered_at IS NULL AND visible_at > ? THEN 1 ELSE 0 END) AS inFlight,
             SUM(CASE WHEN dead_lettered_at IS NOT NULL THEN 1 ELSE 0 END) AS dead
           FROM messages WHERE queue = ?`,
        )
        .get(now, now, this.queue);
      return {
        visible: row?.visible ?? 0,
        inFlight: row?.inFlight ?? 0,
        deadLettered: row?.dead ?? 0,
      };
    });
  }

  /** Dead-lettered messages, oldest first (not part of the port; for `rerun` and ops). */
  async listDeadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = options.limit ?? 1000;
    return guarded(`listing dead letters of queue ${this.queue}`, () =>
      this.store
        .sql<MessageRow>(
          `SELECT id, channel, body, delivery_count, dead_lettered_at, dead_letter_reason
           FROM messages WHERE queue = ? AND dead_lettered_at IS NOT NULL
           ORDER BY id LIMIT ?`,
        )
        .all(this.queue, limit)
        .map((row) => ({
          id: String(row.id),
          channel: row.channel,
          body: row.body,
          deliveryCount: row.delivery_count,
          deadLetteredAt: new Date(row.dead_lettered_at ?? 0),
          reason: row.dead_letter_reason ?? "",
        })),
    );
  }

  /**
   * Move dead-lettered messages (all, or those in `ids`) back to the queue, visible
   * now, with their delivery count reset. Returns how many moved.
   */
  async redrive(ids?: string[]): Promise<number> {
    const update = this.store.sql(
      `UPDATE messages SET dead_lettered_at = NULL, dead_letter_reason = NULL,
         delivery_count = 0, receipt = NULL, visible_at = ?
       WHERE queue = ? AND dead_lettered_at IS NOT NULL AND (? IS NULL OR id = ?)`,
    );
    return this.store.immediate(`redrive in queue ${this.queue}`, () => {
      const now = this.now();
      if (ids === undefined) return update.run(now, this.queue, null, null).changes;
      let moved = 0;
      for (const id of ids) {
        const n = Number(id);
        if (Number.isSafeInteger(n)) moved += update.run(now, this.queue, n, n).changes;
      }
      return moved;
    });
  }

  /**
   * Messages of job `jobId` that are waiting or in flight (not part of the port: the
   * embedded runner uses it to notice a job whose messages were all lost).
   */
  async liveMessagesFor(jobId: string): Promise<number> {
    return guarded(`counting messages of ${jobId} in queue ${this.queue}`, () => {
      const row = this.store
        .sql<{ n: number }>(
          `SELECT COUNT(*) AS n FROM messages
           WHERE queue = ? AND dead_lettered_at IS NULL AND json_extract(body, '$.jobId') = ?`,
        )
        .get(this.queue, jobId);
      return row?.n ?? 0;
    });
  }

  /** Close the connection (reopened on next use). */
  close(): void {
    this.store.close();
  }

  /** The row `receipt` is the current, unexpired delivery of, or LeaseLostError. In a transaction. */
  private inFlight(receipt: string, op: string): MessageRow {
    const row = this.current(receipt, op);
    if (row.visible_at <= this.now()) {
      throw new LeaseLostError(
        `${op}: the delivery's visibility expired; the message may be redelivered`,
        { details: { queue: this.queue, messageId: String(row.id) } },
      );
    }
    return row;
  }

  /** The row `receipt` is the current delivery of, or LeaseLostError. Call inside a transaction. */
  private current(receipt: string, op: string): MessageRow {
    const id = typeof receipt === "string" ? receiptId(receipt) : undefined;
    const row =
      id === undefined
        ? undefined
        : this.store
            .sql<MessageRow>(
              `SELECT id, visible_at, receipt, dead_lettered_at FROM messages
               WHERE id = ? AND queue = ?`,
            )
            .get(id, this.queue);
    if (!row || row.receipt !== receipt || row.dead_lettered_at !== null) {
      throw new LeaseLostError(
        `${op}: receipt is not the message's current delivery (it was redelivered, deleted or dead-lettered)`,
        { details: { queue: this.queue, ...(id === undefined ? {} : { messageId: String(id) }) } },
      );
    }
    return row;
  }
}

/** Factory for a SQLite-backed task queue. */
export function createSqliteTaskQueue(options: SqliteTaskQueueOptions): SqliteTaskQueue {
  return new SqliteTaskQueue(options);
}
