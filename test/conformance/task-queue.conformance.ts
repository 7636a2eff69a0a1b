import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  QueueMessage,
  QueueStats,
  ReceiveOptions,
  TaskQueue,
} from "../../src/ports/task-queue.ts";

/** A fresh, empty queue for one test. */
export interface TaskQueueFixture {
  queue: TaskQueue;
  /**
   * Move the queue's clock forward (an injectable clock). Without it the suite
   * uses 1-second visibilities and real waiting, bounded by long polls.
   */
  advance?: (ms: number) => void | Promise<void>;
  cleanup(): Promise<void>;
}

/** What the suite asks of `setup`: the queue's dead-letter threshold. */
export interface TaskQueueSetupOptions {
  maxDeliveries: number;
}

/** Longest any test waits for something a real queue does asynchronously. */
const EVENTUALLY_MS = 15_000;

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  });
}

/** Retry `check` until it passes or EVENTUALLY_MS runs out (stats may lag on a real service). */
async function eventually(check: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(200);
    }
  }
}

async function statsAre(queue: TaskQueue, expected: QueueStats): Promise<void> {
  await eventually(async () => assert.deepEqual(await queue.stats(), expected));
}

/**
 * Register the TaskQueue contract tests under `describe(label)`. `setup` returns a
 * fresh empty queue that dead-letters after `maxDeliveries` deliveries.
 */
export function taskQueueConformance(
  label: string,
  setup: (options: TaskQueueSetupOptions) => Promise<TaskQueueFixture>,
): void {
  const withQueue =
    (fn: (f: TaskQueueFixture & Harness) => Promise<void>, maxDeliveries = 5) =>
    async (): Promise<void> => {
      const fixture = await setup({ maxDeliveries });
      try {
        await fn({ ...fixture, ...harness(fixture) });
      } finally {
        await fixture.cleanup();
      }
    };

  describe(label, () => {
    it(
      "sends, receives and deletes",
      withQueue(async ({ queue, receiveNow }) => {
        const body = `hello ${randomBytes(4).toString("hex")}`;
        const [id] = await queue.send([{ body }]);
        assert.ok(typeof id === "string" && id.length > 0);
        const got = await receiveNow({ max: 10, visibilitySeconds: 30 });
        assert.equal(got.length, 1);
        const [m] = got as [QueueMessage];
        assert.equal(m.id, id);
        assert.equal(m.body, body);
        assert.equal(m.deliveryCount, 1);
        assert.equal(typeof m.channel, "string");
        assert.ok(m.receipt.length > 0);
        await queue.delete(m.receipt);
        assert.deepEqual(await receiveNow({ max: 10, visibilitySeconds: 30 }), []);
        await statsAre(queue, { visible: 0, inFlight: 0, deadLettered: 0 });
      }),
    );

    it(
      "hides received messages from the next receive",
      withQueue(async ({ queue, receiveNow }) => {
        const ids = await queue.send([{ body: "1" }, { body: "2" }, { body: "3" }]);
        const first = await receiveNow({ max: 2, visibilitySeconds: 30 });
        assert.equal(first.length, 2);
        const second = await receiveNow({ max: 10, visibilitySeconds: 30 });
        assert.equal(second.length, 1);
        assert.deepEqual([...first, ...second].map((m) => m.id).sort(), [...ids].sort());
        assert.deepEqual(await receiveNow({ max: 10, visibilitySeconds: 30 }), []);
      }),
    );

    it(
      "redelivers after the visibility expires, with deliveryCount 2 and a new receipt",
      withQueue(async ({ queue, receiveNow, expire, receiveEventually }) => {
        const [id] = await queue.send([{ body: "x" }]);
        const [first] = await receiveNow({ max: 1, visibilitySeconds: 1 });
        assert.ok(first);
        await expire(1);
        const [second] = await receiveEventually({ max: 1, visibilitySeconds: 30 });
        assert.ok(second, "message was not redelivered");
        assert.equal(second.id, id);
        assert.equal(second.deliveryCount, 2);
        assert.notEqual(second.receipt, first.receipt);
      }),
    );

    it(
      "rejects a stale receipt with LEASE_LOST without touching the new delivery",
      withQueue(async ({ queue, receiveNow, expire, receiveEventually }) => {
        await queue.send([{ body: "x" }]);
        const [stale] = await receiveNow({ max: 1, visibilitySeconds: 1 });
        assert.ok(stale);
        await expire(1);
        const [fresh] = await receiveEventually({ max: 1, visibilitySeconds: 30 });
        assert.ok(fresh, "message was not redelivered");
        await rejectsWithCode(queue.delete(stale.receipt), "LEASE_LOST");
        await rejectsWithCode(queue.changeVisibility(stale.receipt, 0), "LEASE_LOST");
        await rejectsWithCode(queue.deadLetter(stale.receipt, "stale"), "LEASE_LOST");
        // The new delivery is still hidden and still ours.
        assert.deepEqual(await receiveNow({ max: 1, visibilitySeconds: 30 }), []);
        await statsAre(queue, { visible: 0, inFlight: 1, deadLettered: 0 });
        await queue.changeVisibility(fresh.receipt, 30);
        await queue.delete(fresh.receipt);
        await statsAre(queue, { visible: 0, inFlight: 0, deadLettered: 0 });
      }),
    );

    it(
      "extends a lease with changeVisibility (heartbeat)",
      withQueue(async ({ queue, receiveNow, advance }) => {
        await queue.send([{ body: "x" }]);
        const [m] = await receiveNow({ max: 1, visibilitySeconds: 1 });
        assert.ok(m);
        await queue.changeVisibility(m.receipt, 30);
        if (advance) {
          await advance(5_000);
          assert.deepEqual(await receiveNow({ max: 1, visibilitySeconds: 30 }), []);
        } else {
          // Past the original 1 s visibility, well inside the extended one.
          const got = await queue.receive({ max: 1, visibilitySeconds: 30, waitSeconds: 2 });
          assert.deepEqual(got, []);
        }
        await queue.delete(m.receipt);
      }),
    );

    it(
      "hands a message back at once with changeVisibility(0)",
      withQueue(async ({ queue, receiveEventually, receiveNow }) => {
        const [id] = await queue.send([{ body: "x" }]);
        const [m] = await receiveNow({ max: 1, visibilitySeconds: 30 });
        assert.ok(m);
        await queue.changeVisibility(m.receipt, 0);
        const [again] = await receiveEventually({ max: 1, visibilitySeconds: 30 });
        assert.ok(again, "handed-back message was not redelivered");
        assert.equal(again.id, id);
        assert.equal(again.deliveryCount, 2);
        await rejectsWithCode(queue.delete(m.receipt), "LEASE_LOST");
        await queue.delete(again.receipt);
      }),
    );

    it(
      "dead-letters a message delivered maxDeliveries times",
      withQueue(async ({ queue, receiveNow, receiveEventually, advance }) => {
        await queue.send([{ body: "poison" }]);
        for (let delivery = 1; delivery <= 2; delivery++) {
          const [m] =
            delivery === 1
              ? await receiveNow({ max: 1, visibilitySeconds: 30 })
              : await receiveEventually({ max: 1, visibilitySeconds: 30 });
          assert.ok(m, `delivery ${delivery} missing`);
          assert.equal(m.deliveryCount, delivery);
          await queue.changeVisibility(m.receipt, 0);
        }
        const third = await queue.receive({
          max: 1,
          visibilitySeconds: 30,
          waitSeconds: advance ? 0 : 1,
        });
        assert.deepEqual(third, []);
        await statsAre(queue, { visible: 0, inFlight: 0, deadLettered: 1 });
      }, 2),
    );

    it(
      "dead-letters on request with deadLetter()",
      withQueue(async ({ queue, receiveNow }) => {
        await queue.send([{ body: "bad" }, { body: "good" }]);
        const [bad] = await receiveNow({ max: 1, visibilitySeconds: 30 });
        assert.ok(bad);
        assert.equal(bad.body, "bad");
        await queue.deadLetter(bad.receipt, "cannot parse");
        await rejectsWithCode(queue.delete(bad.receipt), "LEASE_LOST");
        const rest = await receiveNow({ max: 10, visibilitySeconds: 30 });
        assert.deepEqual(
          rest.map((m) => m.body),
          ["good"],
        );
        await statsAre(queue, { visible: 0, inFlight: 1, deadLettered: 1 });
      }),
    );

    it(
      "counts visible, in-flight and dead-lettered messages",
      withQueue(async ({ queue, receiveNow }) => {
        await statsAre(queue, { visible: 0, inFlight: 0, deadLettered: 0 });
        await queue.send([{ body: "1" }, { body: "2" }, { body: "3" }]);
        await statsAre(queue, { visible: 3, inFlight: 0, deadLettered: 0 });
        const [m] = await receiveNow({ max: 1, visibilitySeconds: 30 });
        assert.ok(m);
        await statsAre(queue, { visible: 2, inFlight: 1, deadLettered: 0 });
        await queue.delete(m.receipt);
        await statsAre(queue, { visible: 2, inFlight: 0, deadLettered: 0 });
      }),
    );

    it(
      "filters receive by channel",
      withQueue(async ({ queue, receiveNow }) => {
        await queue.send([
          { body: "a1", channel: "a" },
          { body: "b1", channel: "b" },
          { body: "a2", channel: "a" },
        ]);
        const b = await receiveNow({ max: 10, visibilitySeconds: 30, channel: "b" });
        assert.deepEqual(
          b.map((m) => [m.body, m.channel]),
          [["b1", "b"]],
        );
        const a = await receiveNow({ max: 10, visibilitySeconds: 30, channel: "a" });
        assert.deepEqual(a.map((m) => m.body).sort(), ["a1", "a2"]);
        assert.ok(a.every((m) => m.channel === "a"));
        assert.deepEqual(await receiveNow({ max: 10, visibilitySeconds: 30, channel: "b" }), []);
      }),
    );

    it(
      "delivers a batch in send order to a single consumer",
      withQueue(async ({ queue, receiveNow }) => {
        const bodies = ["m0", "m1", "m2", "m3", "m4"];
        const ids = await queue.send(bodies.map((body) => ({ body })));
        assert.equal(ids.length, bodies.length);
        assert.equal(new Set(ids).size, ids.length);
        const got: QueueMessage[] = [];
        for (let i = 0; i < bodies.length; i++) {
          got.push(...(await receiveNow({ max: 1, visibilitySeconds: 30 })));
        }
        assert.deepEqual(
          got.map((m) => m.body),
          bodies,
        );
        assert.deepEqual(
          got.map((m) => m.id),
          ids,
        );
      }),
    );

    it(
      "long-polls: a receive that is waiting gets a message sent meanwhile",
      withQueue(async ({ queue }) => {
        const pending = queue.receive({ max: 1, visibilitySeconds: 30, waitSeconds: 5 });
        await sleep(200);
        await queue.send([{ body: "late" }]);
        const got = await pending;
        assert.deepEqual(
          got.map((m) => m.body),
          ["late"],
        );
      }),
    );
  });
}

interface Harness {
  /** Receive without waiting (a short wait on a real service, where delivery lags). */
  receiveNow(options: ReceiveOptions): Promise<QueueMessage[]>;
  /** Let `seconds` of visibility run out: the fake clock, or real time. */
  expire(seconds: number): Promise<void>;
  /** Receive, long-polling until something arrives or EVENTUALLY_MS passes. */
  receiveEventually(options: ReceiveOptions): Promise<QueueMessage[]>;
}

function harness(fixture: TaskQueueFixture): Harness {
  const { queue, advance } = fixture;
  return {
    receiveNow: (options) => queue.receive({ ...options, waitSeconds: 0 }),
    async expire(seconds) {
      // Real time: receiveEventually's long polls do the waiting.
      if (advance) await advance(seconds * 1000 + 1);
    },
    async receiveEventually(options) {
      const deadline = Date.now() + EVENTUALLY_MS;
      for (;;) {
        const got = await queue.receive({ ...options, waitSeconds: advance ? 0 : 1 });
        if (got.length > 0 || Date.now() >= deadline) return got;
        if (advance) await sleep(20);
      }
    },
  };
}
