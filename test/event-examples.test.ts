/**
 * The example payloads in events/examples/ are what the pipeline really takes
 * and emits: each one goes through the parser or schema that guards it.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import completionSchema from "../events/schemas/completion-event.schema.json" with { type: "json" };
import { resolveJobSpec } from "../src/core/job-spec.ts";
import { compileValidator } from "../src/core/schema.ts";
import { parseObjectEvent } from "../src/pipeline/events.ts";
import { parseTask } from "../src/pipeline/messages.ts";
import { validateRequest } from "../src/pipeline/requests.ts";

const dir = path.join(import.meta.dirname, "..", "events", "examples");
const load = (name: string): unknown => JSON.parse(readFileSync(path.join(dir, name), "utf8"));

describe("events/examples", () => {
  it("every example is covered here", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    assert.deepEqual(files.sort(), [
      "fn-invoke-job-spec.json",
      "fn-invoke-merge.json",
      "fn-invoke-rerun-failed.json",
      "fn-invoke-rerun.json",
      "fn-invoke-scaler-dry-run.json",
      "job-completed.json",
      "objectstorage-createobject.json",
      "objectstorage-updateobject.json",
      "task-message-partition.json",
    ]);
  });

  it("Object Storage envelopes parse as upload events", () => {
    for (const name of ["objectstorage-createobject.json", "objectstorage-updateobject.json"]) {
      const e = parseObjectEvent(load(name));
      assert.equal(e.data.additionalDetails.bucketName, "input");
      assert.match(e.eventType, /objectstorage\.(create|update)object$/);
    }
  });

  it("the manual job spec resolves, with defaults filled", () => {
    const spec = resolveJobSpec((load("fn-invoke-job-spec.json") as { spec: unknown }).spec);
    assert.equal(spec.output.format, "csv");
    assert.equal(spec.maxAttempts, 3);
  });

  it("the queue message and the completion event validate against their schemas", () => {
    assert.deepEqual(parseTask(JSON.stringify(load("task-message-partition.json"))), {
      kind: "partition",
      jobId: "job-ed095f883c4f7efba8cc2998",
      partition: 3,
    });
    const validate = compileValidator("completion event", "INVALID_EVENT", completionSchema);
    assert.doesNotThrow(() => validate(load("job-completed.json")));
    assert.throws(() => validate({ ...(load("job-completed.json") as object), data: {} }), {
      code: "INVALID_EVENT",
    });
  });

  it("function bodies validate against events/schemas/function-requests.schema.json", () => {
    assert.ok(validateRequest.manualSpec(load("fn-invoke-job-spec.json")).spec);
    assert.match(
      validateRequest.rerunFailed(load("fn-invoke-rerun-failed.json")).rerunFailed,
      /^job-/,
    );
    assert.match(validateRequest.merge(load("fn-invoke-merge.json")).jobId, /^job-/);
    assert.equal(validateRequest.rerun(load("fn-invoke-rerun.json")).runTag, "after-feature-fix");
    assert.equal(validateRequest.scale(load("fn-invoke-scaler-dry-run.json"))?.dryRun, true);
    assert.throws(() => validateRequest.merge({ jobId: "job-1", extra: 1 }), {
      code: "INVALID_EVENT",
    });
  });
});
