/**
 * Prototype check: CSV with quoted newlines through the pipeline (splitter, workers with
 * speculation, the chaining check at finalize, merger, verify), with small partitions so
 * that boundaries fall inside multi-line fields, and bad records whose line numbers are
 * checked against the physical lines of the input.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import { Rng } from "../src/model/datasets.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { lineNumberAt, referenceRecords } from "./helpers/csv-reference.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";
import { lineSpans } from "./helpers/poison.ts";

let root: { dir: string; cleanup(): Promise<void> };
before(async () => {
  root = await tempDir("bi-csvq-");
});
after(() => root.cleanup());

describe("CSV with quoted newlines through the pipeline", () => {
  it("every record once, exact error lines, with boundaries inside quoted fields", async (t) => {
    const descriptor = await churnModel();
    const text = await readFile(await customerCsv(root.dir, 300, 96));
    const [header, ...rows] = lineSpans(text).map((s) => text.toString("utf8", s.start, s.end));
    const seed = Number(process.env.FUZZ_SEED ?? 12345);
    const rng = new Rng(seed);
    let rereads = 0;
    for (let round = 0; round < 6; round++) {
      const out: string[] = [`${header},memo`];
      const badLines: number[] = [];
      let line = 1 + 1; // header is line 1 (one line here)
      for (const row of rows) {
        const r = rng.next();
        let note: string;
        if (r < 0.3) note = `"called\nabout ""billing""\r\nand, later, again"`;
        else if (r < 0.5) note = `"${"long note ".repeat(1 + rng.int(30))}\n-- end"`;
        else note = "fine";
        let body = `${row},${note}`;
        if (rng.bernoulli(0.05)) {
          body = `${row.replace(/,[^,]*,/, ",oops,")},${note}`; // a bad value
          badLines.push(line);
        }
        out.push(body);
        line += body.split("\n").length;
      }
      const bytes = Buffer.from(`${out.join(rng.bernoulli(0.5) ? "\n" : "\r\n")}\n`);
      const p = openLocalPipeline(path.join(root.dir, `p-${round}`), { log: silentLogger });
      try {
        await p.store.put("input", "q.csv", bytes);
        const { jobId } = await splitJob(p, {
          input: { bucket: "input", object: "q.csv" },
          output: { bucket: "output", format: rng.bernoulli(0.5) ? "csv" : "jsonl" },
          model: { descriptor },
          partitionBytes: 1024 + rng.int(4096),
          checkpointEvery: 1 + rng.int(30),
          batchSize: 1 + rng.int(64),
        });
        await new PartitionWorker(p, {
          workerId: "w",
          receiveWaitSeconds: 0,
          scorer: { thread: false },
        }).run({ untilIdle: true });
        // A partition the chaining check read again starts at a known record start.
        const partitions = await p.checkpoints.readPartitions(jobId);
        rereads += partitions.filter((q) => q.startIsRecordStart).length;
        const job = (await p.checkpoints.getJob(jobId))?.value;
        assert.ok(job);
        assert.equal(
          job.state,
          "completed_with_errors" === job.state ? job.state : "completed",
          job.error,
        );
        const verified = await verifyJob(p, job);
        assert.ok(verified.ok, JSON.stringify(verified.checks));
        const dataStart = job.input.dataStart;
        const expected = referenceRecords(bytes, dataStart, 1 << 20).filter((r) => r.text !== "");
        assert.equal(verified.inputRecords, expected.length);
        assert.equal(verified.errors, badLines.length);
        const errText = (
          await (async () => {
            const chunks: Buffer[] = [];
            for await (const c of await p.store.read(
              "output",
              job.result?.errorsOutput.object ?? "",
            ))
              chunks.push(c as Buffer);
            return Buffer.concat(chunks).toString("utf8");
          })()
        )
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { line: number; offset: number });
        assert.deepEqual(
          errText.map((e) => e.line),
          badLines,
        );
        for (const e of errText) assert.equal(e.line, lineNumberAt(bytes, e.offset));
      } finally {
        p.close();
      }
    }
    t.diagnostic(`${rereads} partitions read again by the chaining check`);
    assert.ok(rereads > 0, "some partition started inside a quoted field");
  });
});
