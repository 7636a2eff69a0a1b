import type * as common from "oci-common";
import type { models, QueueClient } from "oci-queue";
import { InvalidArgumentError, LeaseLostError, StoreUnavailableError } from "../../core/errors.ts";
import type {
  QueueMessage,
  QueueStats,
  ReceiveOptions,
  TaskQueue,
} from "../../ports/task-queue.ts";
import { checkMessages, checkSeconds, MAX_MESSAGE_BYTES } from "../port-contract.ts";

export { MAX_MESSAGE_BYTES };

import { type AuthzRetry, NO_AUTHZ_RETRY, retryNotAuthorized } from "./authz-retry.ts";
import { retryConfiguration } from "./clients.ts";
import { mapOciError, ociStatus } from "./errors.ts";

/**
 * Messages per putMessages request and most a getMessages `limit` may ask for.
 * UNCONFIRMED: 20 is assumed for both.
 */
export const MAX_BATCH = 20;
/** Longest long poll (`timeoutInSeconds`) we ask for; UNCONFIRMED that 20 is the service cap. */
export const MAX_WAIT_SECONDS = 20;
/**
 * How long `deadLetter` holds the message while it parks a copy: long enough that
 * the copy and the delete finish before anyone else could be handed the message.
 */
export const PARK_LEASE_SECONDS = 60;
/** Longest custom property value we send (UNCONFIRMED service limit; reasons get cut here). */
const MAX_PROPERTY_CHARS = 1024;
/** Deliveries remembered for `deadLetter` (see {@link OciTaskQueue}); oldest forgotten first. */
const DELIVERY_CACHE_SIZE = 10_000;

/** The QueueClient calls this adapter makes (a real `QueueClient`, or a fake in unit tests). */
export type QueueMessagesClient = Pick<
  QueueClient,
  "putMessages" | "getMessages" | "updateMessage" | "deleteMessage" | "getStats"
>;

/** Options for {@link OciTaskQueue}. */
export interface OciTaskQueueOptions {
  /** A QueueClient whose `endpoint` is already the queue's `messagesEndpoint`. */
  client: QueueMessagesClient;
  /** OCID of the work queue. */
  queueId: string;
  /**
   * OCID of the "parking" queue `deadLetter` moves messages to (a second queue the
   * deploy scripts create). Without it `deadLetter` deletes the message: see
   * {@link OciTaskQueue.deadLetter}.
   */
  deadLetterQueueId?: string;
  /** Client for the parking queue when its messages endpoint differs (default: `client`). */
  parkingClient?: QueueMessagesClient;
  /** Who calls (`ociIdentity(auth).principal`), named in configuration errors. */
  principal?: string;
  /** How long a not-authorized-or-not-found answer is retried (default: not at all). */
  authzRetry?: AuthzRetry;
}

/** Why a message was parked, as `metadata.customProperties` of its copy on the parking queue. */
export interface ParkedProperties {
  reason: string;
  originalId: string;
  originalQueueId: string;
  deliveryCount: string;
  channel: string;
  deadLetteredAt: string;
}

/**
 * Does this failure of updateMessage/deleteMessage mean the receipt is no longer the
 * message's current delivery? UNCONFIRMED which status the service uses for a
 * superseded or expired receipt: 404 is the most plausible (the stand-in answers
 * that); 409 and a 400 whose message mentions the receipt are accepted too, so
 * either answer becomes LeaseLostError rather than a retryable or caller error.
 */
function isStaleReceipt(err: unknown): boolean {
  const status = ociStatus(err);
  if (status === 404 || status === 409) return true;
  return status === 400 && /receipt/i.test(String((err as { message?: unknown }).message ?? ""));
}

/**
 * TaskQueue over OCI Queue.
 *
 * Each delivery carries the service's receipt; only the current one may extend,
 * delete or dead-letter, so a stale one becomes LeaseLostError. OCI Queue moves a
 * message to the queue's own DLQ once its delivery count reaches the queue's
 * `deadLetterQueueDeliveryCount` (the deploy sets it to the pipeline's max
 * deliveries), but it has no call to dead-letter one message on demand; `deadLetter`
 * parks a copy on a second queue instead and deletes the original. `stats` adds both.
 *
 * Every call carries a request-level retry policy: the SDK retries getMessages and
 * putMessages not at all by default, and the others up to 8 times with 30 s waits,
 * which could outlast a heartbeat's lease.
 */
export class OciTaskQueue implements TaskQueue {
  /** OCID of the work queue. */
  readonly queueId: string;
  /** OCID of the parking queue, if any. */
  readonly deadLetterQueueId: string | undefined;
  private readonly client: QueueMessagesClient;
  private readonly parkingClient: QueueMessagesClient;
  private readonly retry: common.RetryConfiguration = retryConfiguration();
  private readonly principal: string | undefined;
  private readonly authzRetry: AuthzRetry;
  /**
   * Deliveries this instance handed out, by receipt: `deadLetter` needs the body to
   * park a copy and the service has no get-by-receipt call. Bounded; entries go on
   * delete, dead-letter and hand-back, the oldest when full.
   */
  private readonly deliveries = new Map<string, QueueMessage>();

  constructor(options: OciTaskQueueOptions) {
    if (!options?.client) throw new InvalidArgumentError("OciTaskQueue: client is required");
    if (!options.queueId) throw new InvalidArgumentError("OciTaskQueue: queueId is required");
    this.client = options.client;
    this.queueId = options.queueId;
    this.deadLetterQueueId = options.deadLetterQueueId || undefined;
    this.parkingClient = options.parkingClient ?? options.client;
    this.principal = options.principal;
    this.authzRetry = options.authzRetry ?? NO_AUTHZ_RETRY;
  }

  /** Enqueue in order, in requests of {@link MAX_BATCH}; returns the service's ids. */
  async send(messages: { body: string; channel?: string }[]): Promise<string[]> {
    checkMessages(messages);
    const ids: string[] = [];
    for (let start = 0; start < messages.length; start += MAX_BATCH) {
      const chunk = messages.slice(start, start + MAX_BATCH);
      const entries: models.PutMessagesDetailsEntry[] = chunk.map((m) =>
        m.channel === undefined
          ? { content: m.body }
          : { content: m.body, metadata: { channelId: m.channel } },
      );
      const response = await this.call(`putMessages to queue ${this.queueId}`, this.queueId, () =>
        this.client.putMessages({
          queueId: this.queueId,
          putMessagesDetails: { messages: entries },
          retryConfiguration: this.retry,
        }),
      );
      const got = response.putMessages.messages;
      if (got.length !== chunk.length) {
        throw new StoreUnavailableError(
          `putMessages to queue ${this.queueId}: ${got.length} ids came back for ${chunk.length} messages`,
        );
      }
      ids.push(...got.map((m) => String(m.id)));
    }
    return ids;
  }

  /** Claim up to `max` messages (at most {@link MAX_BATCH}); long-polls up to `waitSeconds` (at most 20). */
  async receive(options: ReceiveOptions): Promise<QueueMessage[]> {
    const { max, visibilitySeconds, channel } = options;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new InvalidArgumentError(`receive: max must be an integer >= 1, got ${max}`);
    }
    checkSeconds("receive: visibilitySeconds", visibilitySeconds);
    checkSeconds("receive: waitSeconds", options.waitSeconds ?? 0);
    const response = await this.call(`getMessages from queue ${this.queueId}`, this.queueId, () =>
      this.client.getMessages({
        queueId: this.queueId,
        // The service takes whole seconds; round up so a lease is never shorter than asked.
        visibilityInSeconds: Math.ceil(visibilitySeconds),
        // Always explicit: an absent timeout means the queue's default long poll.
        timeoutInSeconds: Math.min(Math.ceil(options.waitSeconds ?? 0), MAX_WAIT_SECONDS),
        limit: Math.min(max, MAX_BATCH),
        ...(channel === undefined ? {} : { channelFilter: channel }),
        retryConfiguration: this.retry,
      }),
    );
    const out = response.getMessages.messages.map(
      (m): QueueMessage => ({
        id: String(m.id),
        body: m.content,
        receipt: m.receipt,
        deliveryCount: m.deliveryCount,
        channel: m.metadata?.channelId ?? "",
      }),
    );
    for (const m of out) this.remember(m);
    return out;
  }

  /** Hide the current delivery for `visibilitySeconds` from now; 0 hands it back. */
  async changeVisibility(receipt: string, visibilitySeconds: number): Promise<void> {
    checkSeconds("changeVisibility: visibilitySeconds", visibilitySeconds);
    await this.update(receipt, Math.ceil(visibilitySeconds), "changeVisibility");
    if (visibilitySeconds === 0) this.deliveries.delete(receipt);
  }

  /** Acknowledge the current delivery (removes the message). */
  async delete(receipt: string): Promise<void> {
    await this.receiptCall("delete", receipt, () =>
      this.client.deleteMessage({
        queueId: this.queueId,
        messageReceipt: receipt,
        retryConfiguration: this.retry,
      }),
    );
    this.deliveries.delete(receipt);
  }

  /**
   * Take the message out of circulation now, with `reason`.
   *
   * With a parking queue: first extend the lease ({@link PARK_LEASE_SECONDS}), which
   * also proves the receipt is current, so a stale one fails with LeaseLostError
   * before any copy exists; then put a copy on the parking queue with the reason,
   * original id, delivery count and channel in `metadata.customProperties`; then
   * delete the original. A crash between the two leaves the message in both queues
   * (at least once, never lost). The receipt must come from this instance's
   * `receive`, which is where the body to copy is remembered.
   *
   * Without a parking queue (the deploy always sets one; ad-hoc setups may not) the
   * message is just deleted (a stale receipt still fails with LeaseLostError):
   * taking it out of circulation is the point, and the caller has already logged
   * the reason. Keeping it in flight instead would count as work in `stats` and
   * hold the scaler up, and it would come back.
   */
  async deadLetter(receipt: string, reason: string): Promise<void> {
    const parkingId = this.deadLetterQueueId;
    if (parkingId !== undefined) {
      await this.update(receipt, PARK_LEASE_SECONDS, "deadLetter");
      const delivery = this.deliveries.get(receipt);
      if (!delivery) {
        throw new InvalidArgumentError(
          "deadLetter: this receipt was not received through this OciTaskQueue, so its body is unknown and cannot be parked; the message stays in the queue and reaches its DLQ after its delivery limit",
          { details: { queue: this.queueId } },
        );
      }
      await this.park(delivery, reason, parkingId);
    }
    await this.receiptCall("deadLetter", receipt, () =>
      this.client.deleteMessage({
        queueId: this.queueId,
        messageReceipt: receipt,
        retryConfiguration: this.retry,
      }),
    );
    this.deliveries.delete(receipt);
  }

  /**
   * Depth for the scaler: the work queue's visible and in-flight counts; dead-lettered =
   * the queue's DLQ plus the parking queue (both approximate, as OCI reports them).
   */
  async stats(): Promise<QueueStats> {
    const stats = (client: QueueMessagesClient, queueId: string) =>
      this.call(`getStats of queue ${queueId}`, queueId, () =>
        client.getStats({ queueId, retryConfiguration: this.retry }),
      ).then((r) => r.queueStats);
    const parkingId = this.deadLetterQueueId;
    const [main, parking] = await Promise.all([
      stats(this.client, this.queueId),
      parkingId === undefined ? undefined : stats(this.parkingClient, parkingId),
    ]);
    return {
      visible: main.queue.visibleMessages,
      inFlight: main.queue.inFlightMessages,
      deadLettered: main.dlq.visibleMessages + (parking?.queue.visibleMessages ?? 0),
    };
  }

  private async park(delivery: QueueMessage, reason: string, parkingId: string): Promise<void> {
    const properties: ParkedProperties = {
      reason: String(reason).slice(0, MAX_PROPERTY_CHARS),
      originalId: delivery.id,
      originalQueueId: this.queueId,
      deliveryCount: String(delivery.deliveryCount),
      channel: delivery.channel,
      deadLetteredAt: new Date().toISOString(),
    };
    // Keep the original channel so parked work can be read back per channel; a
    // message that had none gets none (the SDK type wants channelId, the API does not).
    const metadata = {
      ...(delivery.channel === "" ? {} : { channelId: delivery.channel }),
      customProperties: { ...properties },
    } as models.MessageMetadata;
    await this.call(`putMessages to parking queue ${parkingId}`, parkingId, () =>
      this.parkingClient.putMessages({
        queueId: parkingId,
        putMessagesDetails: { messages: [{ content: delivery.body, metadata }] },
        retryConfiguration: this.retry,
      }),
    );
  }

  private async update(receipt: string, visibilityInSeconds: number, op: string): Promise<void> {
    await this.receiptCall(op, receipt, () =>
      this.client.updateMessage({
        queueId: this.queueId,
        messageReceipt: receipt,
        updateMessageDetails: { visibilityInSeconds },
        retryConfiguration: this.retry,
      }),
    );
  }

  /** A call keyed by a receipt: a stale receipt becomes LeaseLostError. */
  private async receiptCall<T>(op: string, receipt: string, fn: () => Promise<T>): Promise<T> {
    if (typeof receipt !== "string" || receipt === "") {
      throw new InvalidArgumentError(`${op}: receipt must be a non-empty string`);
    }
    try {
      return await fn();
    } catch (err) {
      if (isStaleReceipt(err)) {
        this.deliveries.delete(receipt);
        throw new LeaseLostError(
          `${op}: receipt is not the message's current delivery (it was redelivered, deleted or dead-lettered)`,
          { cause: err, details: { queue: this.queueId, status: ociStatus(err) } },
        );
      }
      throw mapOciError(err, `${op} in queue ${this.queueId}`);
    }
  }

  /**
   * A call on a queue (not keyed by a receipt): any 404 is the queue missing or
   * this principal not allowed to use it, a configuration error retried within
   * the authorization window.
   */
  private async call<T>(what: string, queueId: string, fn: () => Promise<T>): Promise<T> {
    return retryNotAuthorized(this.authzRetry, async () => {
      try {
        return await fn();
      } catch (err) {
        throw mapOciError(err, what, {
          absent: [],
          principal: this.principal,
          resource: `queue ${queueId}`,
        });
      }
    });
  }

  private remember(delivery: QueueMessage): void {
    if (this.deliveries.size >= DELIVERY_CACHE_SIZE) {
      const oldest = this.deliveries.keys().next();
      if (!oldest.done) this.deliveries.delete(oldest.value);
    }
    this.deliveries.set(delivery.receipt, delivery);
  }
}

/** Factory for an OCI Queue-backed task queue. */
export function createOciTaskQueue(options: OciTaskQueueOptions): OciTaskQueue {
  return new OciTaskQueue(options);
}
