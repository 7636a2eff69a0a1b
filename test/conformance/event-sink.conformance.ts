import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { EventLog, EventSink, PipelineEvent } from "../../src/ports/event-sink.ts";

/** A sink and the log that reads what it published. */
export interface EventSinkFixture {
  sink: EventSink;
  log: EventLog;
  cleanup(): Promise<void>;
}

/** A valid CloudEvents 0.1 envelope for tests. */
export function sampleEvent(
  jobId: string,
  eventType = "com.example.batch.job.completed",
  data: Record<string, unknown> = {},
): PipelineEvent {
  return {
    cloudEventsVersion: "0.1",
    eventID: randomUUID(),
    eventType,
    eventTypeVersion: "1.0",
    source: "batch-inference/conformance",
    eventTime: new Date().toISOString(),
    contentType: "application/json",
    data: { jobId, ...data },
  };
}

/** Read until `check` passes (a real stream may lag) or 15 s pass. */
async function eventually(check: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 15_000;
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

/** Register the EventSink/EventLog contract tests under `describe(label)`. */
export function eventSinkConformance(label: string, setup: () => Promise<EventSinkFixture>): void {
  const withLog =
    (fn: (f: EventSinkFixture, jobId: string) => Promise<void>) => async (): Promise<void> => {
      const fixture = await setup();
      try {
        await fn(fixture, `job-conformance-${randomBytes(8).toString("hex")}`);
      } finally {
        await fixture.cleanup();
      }
    };

  describe(label, () => {
    it(
      "reads back what was published, in order",
      withLog(async ({ sink, log }, jobId) => {
        const events = [
          sampleEvent(jobId, "com.example.batch.job.started"),
          sampleEvent(jobId, "com.example.batch.job.completed", { records: 42 }),
        ];
        await sink.publish(events);
        await eventually(async () => assert.deepEqual(await log.read({ jobId }), events));
      }),
    );

    it(
      "keeps one copy of an eventID published twice",
      withLog(async ({ sink, log }, jobId) => {
        const first = sampleEvent(jobId);
        const second = sampleEvent(jobId, "com.example.batch.job.failed");
        await sink.publish([first]);
        await sink.publish([first, second, second]);
        await sink.publish([]);
        await eventually(async () =>
          assert.deepEqual(
            (await log.read({ jobId })).map((e) => e.eventID),
            [first.eventID, second.eventID],
          ),
        );
      }),
    );

    it(
      "filters by jobId and eventType",
      withLog(async ({ sink, log }, jobId) => {
        const other = `${jobId}-other`;
        const mine = sampleEvent(jobId, "com.example.batch.job.completed");
        const mineStarted = sampleEvent(jobId, "com.example.batch.job.started");
        const theirs = sampleEvent(other, "com.example.batch.job.completed");
        await sink.publish([mine, theirs, mineStarted]);
        await eventually(async () => {
          assert.deepEqual(await log.read({ jobId }), [mine, mineStarted]);
          assert.deepEqual(await log.read({ jobId: other }), [theirs]);
          assert.deepEqual(await log.read({ jobId, eventType: "com.example.batch.job.started" }), [
            mineStarted,
          ]);
          const all = await log.read();
          for (const e of [mine, theirs, mineStarted]) {
            assert.ok(all.some((x) => x.eventID === e.eventID));
          }
        });
      }),
    );

    it(
      "rejects an event without an eventID with INVALID_EVENT",
      withLog(async ({ sink, log }, jobId) => {
        const good = sampleEvent(jobId);
        const bad = { ...sampleEvent(jobId), eventID: "" };
        await assert.rejects(sink.publish([good, bad]), (err: unknown) => {
          assert.equal((err as { code?: unknown }).code, "INVALID_EVENT");
          return true;
        });
        // The batch is validated before anything is written.
        assert.deepEqual(await log.read({ jobId }), []);
      }),
    );
  });
}
