/** Function handlers built from injected deps, over the real local adapters. */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { createMergerHandler } from "../functions/merger/handler.ts";
import { createScalerHandler } from "../functions/scaler/handler.ts";
import { createSplitterHandler } from "../functions/splitter/handler.ts";
import { silentLogger } from "../src/core/log.ts";
import { objectCreatedEvent } from "../src/pipeline/events.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { DEFAULT_POLICY } from "../src/pipeline/scaler.ts";
import type { ReplicaTarget } from "../src/ports/replica-target.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
});
after(() => root.cleanup());

describe("function handlers", () => {
  it("splitter: upload event → one job however often it arrives; merger: idempotent; bad input named", async () => {
    const p = openLocalPipeline(path.join(root.dir, "fn"), { log: silentLogger });
    try {
      const { etag } = await uploadFile(p, "input", "c.csv", await customerCsv(root.dir, 1000, 91));
      const split = createSplitterHandler(p, {
        defaults: {
          output: { bucket: "output" },
          model: { descriptor },
          partitionBytes: 32 * 1024,
        },
      });
      const event = objectCreatedEvent({ bucket: "input", object: "c.csv", etag, eventId: "e1" });
      const first = await split(event);
      const second = await split(event);
      assert.equal(first.action, "split");
      assert.ok(
        first.action === "split" && first.created && second.action === "split" && !second.created,
      );
      await assert.rejects(split({ hello: "world" }), /expected an OCI object event/);
      await assert.rejects(
        split({ ...event, eventType: "com.oraclecloud.objectstorage.deleteobject" }),
        (err: Error & { schemaPath?: string }) => {
          assert.match(err.message, /object event invalid at \/eventType/);
          assert.equal(err.schemaPath, "#/properties/eventType/enum");
          return true;
        },
      );
      await new PartitionWorker(p, { workerId: "w", receiveWaitSeconds: 0 }).run({
        untilIdle: true,
      });
      const merge = createMergerHandler(p);
      const answer = await merge({ jobId: first.jobId });
      assert.deepEqual(answer, {
        jobId: first.jobId,
        state: "completed",
        records: 1000,
        errors: 0,
      });
      assert.deepEqual(await merge({ jobId: first.jobId }), answer);
      await assert.rejects(
        merge({ jobId: "../../x" }),
        /merge request invalid at \/jobId: must match pattern/,
      );
    } finally {
      p.close();
    }
  });

  it("scaler: reads queue depth, sets replicas, reports why; dry run changes nothing", async () => {
    const p = openLocalPipeline(path.join(root.dir, "scaler"), { log: silentLogger });
    try {
      await p.queue.send(Array.from({ length: 5 }, (_, i) => ({ body: `m${i}` })));
      let replicas = 0;
      const target: ReplicaTarget = {
        current: async () => replicas,
        scaleTo: async (n) => {
          replicas = n;
        },
      };
      let saved: number | undefined;
      const scale = createScalerHandler(
        {
          queue: p.queue,
          target,
          log: silentLogger,
          now: () => 1000,
          state: {
            get: async () => saved,
            set: async (v) => {
              saved = v;
            },
          },
        },
        { ...DEFAULT_POLICY, targetPerReplica: 2, maxReplicas: 10 },
      );
      const dry = await scale({ dryRun: true });
      assert.equal(dry.replicas, 3);
      assert.equal(dry.applied, false);
      assert.equal(replicas, 0);
      const real = await scale({});
      assert.equal(real.applied, true);
      assert.equal(replicas, 3);
      assert.match(real.reason, /ceil\(\(5 visible \+ 0 in flight\) \/ 2\) = 3/);
      assert.equal(saved, 1000);
    } finally {
      p.close();
    }
  });
});
