/** A message as a consumer sees it. */
export interface QueueMessage {
  id: string;
  body: string;
  /** Proof of this delivery; stale after the message is redelivered to someone else. */
  receipt: string;
  /** 1 on first delivery. */
  deliveryCount: number;
  channel: string;
}

/** Queue depth, as the scaler reads it. */
export interface QueueStats {
  visible: number;
  inFlight: number;
  deadLettered: number;
}

/** Options for `receive`. */
export interface ReceiveOptions {
  /** At most this many messages. */
  max: number;
  /** How long received messages stay hidden from other consumers. */
  visibilitySeconds: number;
  /** Long poll: wait up to this long for a message (0 = return at once). */
  waitSeconds?: number;
  /** Only messages of this channel (default: any channel). */
  channel?: string;
  /**
   * Ends a long poll early (the worker is stopping): the receive returns what it has,
   * usually nothing. An adapter whose service can't cut a poll short (OCI Queue's
   * long poll is one HTTP request) finishes it, at most `waitSeconds` later.
   */
  signal?: AbortSignal;
}

/**
 * Port: an at-least-once task queue with visibility timeouts (OCI Queue; SQLite locally).
 * Safe for several processes at once. A message delivered more than the queue's
 * max delivery count goes to the dead-letter queue instead.
 */
export interface TaskQueue {
  /** Enqueue messages; returns their ids in order. */
  send(messages: { body: string; channel?: string }[]): Promise<string[]>;
  receive(options: ReceiveOptions): Promise<QueueMessage[]>;
  /** Heartbeat: hide the message for `visibilitySeconds` from now (0 = hand it back now). Throws LeaseLostError on a stale receipt. */
  changeVisibility(receipt: string, visibilitySeconds: number): Promise<void>;
  /** Acknowledge. Throws LeaseLostError on a stale receipt (someone else now holds it). */
  delete(receipt: string): Promise<void>;
  /** Move a message to the dead-letter queue now, with a reason. Throws LeaseLostError on a stale receipt. */
  deadLetter(receipt: string, reason: string): Promise<void>;
  stats(): Promise<QueueStats>;
}
