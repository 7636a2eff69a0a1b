/**
 * The worker's model sessions: one opened early (a held local worker opens the run's
 * model while the run checks its input) serves the first job on that model, and only
 * that model; a failed early open costs nothing but the job's own open.
 */
import assert from "node:assert/strict";
import { cp } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { type LoadedModel, loadModel } from "../src/model/descriptor.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { openModelEarly, TaskRuntimeCache } from "../src/pipeline/task-runtimes.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { numericCsv, numericModel } from "./helpers/chaos.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

const cleanups: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanups.map((c) => c())));

async function scratchDir(): Promise<string> {
  const t = await tempDir("bi-runtimes-");
  cleanups.push(t.cleanup);
  return t.dir;
}

/** A job on `descriptor`, as the splitter records it. */
async function jobOn(descriptor: string): Promise<JobRecord> {
  const p = openLocalPipeline(await scratchDir(), { log: silentLogger });
  try {
    await uploadFile(p, "input", "data.csv", await numericCsv(50, 3));
    const { jobId } = await splitJob(p, {
      input: { bucket: "input", object: "data.csv" },
      output: { bucket: "output" },
      model: { descriptor },
    });
    const row = await p.checkpoints.getJob(jobId);
    assert.ok(row);
    return row.value;
  } finally {
    p.close();
  }
}

/** loadModel, counting the descriptors it was asked for. */
function countingLoader(): {
  load: (d: string) => Promise<LoadedModel>;
  loads: string[];
} {
  const loads: string[] = [];
  return {
    loads,
    load: (d) => {
      loads.push(path.basename(path.dirname(d)));
      return loadModel(d);
    },
  };
}

describe("TaskRuntimeCache with a model opened early", () => {
  it("serves the first job on that model from the early session, opening nothing more", async () => {
    const descriptor = await numericModel(7);
    const job = await jobOn(descriptor);
    const { load, loads } = countingLoader();
    const opened: string[] = [];
    const early = openModelEarly(load, descriptor, { thread: false });
    const cache = new TaskRuntimeCache(
      load,
      { thread: false },
      2,
      (o) => {
        opened.push(o.session.provider);
      },
      early,
    );
    try {
      assert.equal(loads.length, 1, "the early open loaded the model");
      const runtime = await cache.forJob(job);
      assert.ok(runtime);
      assert.equal(loads.length, 1, "the job's runtime came from the early session");
      assert.deepEqual(opened, ["cpu"], "the early session is reported once, as the job takes it");
      assert.equal(await cache.forJob(job), runtime, "the same job keeps its runtime");
    } finally {
      await cache.close();
    }
  });

  it("never serves a job from a session opened before its model file was replaced", async () => {
    // The same descriptor path, another ONNX file by the time the job is created: the
    // early session holds the old weights and must not score the job.
    const dir = path.join(await scratchDir(), "model");
    await cp(path.dirname(await numericModel(7)), dir, { recursive: true });
    const descriptor = path.join(dir, "descriptor.json");
    const { load, loads } = countingLoader();
    const early = openModelEarly(load, descriptor, { thread: false });
    const before = await early;
    assert.ok(before, "the early open succeeded");
    await cp(
      path.join(path.dirname(await numericModel(8)), "model.onnx"),
      path.join(dir, "model.onnx"),
    );
    const job = await jobOn(descriptor);
    assert.notEqual(
      job.model.sha256,
      before.model.identity.sha256,
      "the job names the new weights",
    );
    const cache = new TaskRuntimeCache(load, { thread: false }, 2, undefined, early);
    try {
      await cache.forJob(job);
      assert.equal(
        loads.length,
        2,
        "the job loaded its model again instead of taking the early one",
      );
    } finally {
      await cache.close();
    }
  });

  it("leaves a job on another model (or a failed early open) to open its own", async () => {
    const job = await jobOn(await numericModel(7));
    const other = await numericModel(8);
    const { load, loads } = countingLoader();
    const cache = new TaskRuntimeCache(
      load,
      { thread: false },
      2,
      undefined,
      openModelEarly(load, other),
    );
    try {
      await cache.forJob(job);
      assert.equal(loads.length, 2, "the job's own model was loaded beside the early one");
    } finally {
      await cache.close();
    }

    const failing = countingLoader();
    const missing = path.join(await scratchDir(), "none", "descriptor.json");
    const early = openModelEarly(failing.load, missing);
    assert.equal(await early, undefined, "a failed early open resolves to nothing");
    const cache2 = new TaskRuntimeCache(failing.load, { thread: false }, 2, undefined, early);
    try {
      await cache2.forJob(job);
      assert.equal(failing.loads.length, 2, "the job opened its model after the failed early open");
    } finally {
      await cache2.close();
    }
  });
});
