/** The CLI as a user meets it: one-line errors that say what to fix, non-zero exits, a summary. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
let input: string;

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
  input = await customerCsv(root.dir, 3000, 81);
});
after(() => root.cleanup());

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("batch-infer CLI", () => {
  it("run scores a file, prints a summary, and status/events/jobs describe the job", () => {
    const dataDir = path.join(root.dir, "state");
    const outDir = path.join(root.dir, "results");
    const r = cli(
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dataDir,
      "--partition-size",
      "64KiB",
      "--workers",
      "2",
      "--output",
      outDir,
      "--output-format",
      "csv",
    );
    assert.equal(r.code, 0, r.stderr);
    const jobId = /job (job-[0-9a-f]{24}) completed/.exec(r.stdout)?.[1];
    assert.ok(jobId, r.stdout);
    assert.match(r.stdout, /3,000 scored, 0 bad/);
    assert.match(r.stdout, new RegExp(`output +${outDir.replaceAll("/", "\\/")}/predictions.csv`));
    // Not a terminal: plain progress lines, no carriage returns.
    assert.doesNotMatch(r.stderr, /\r/);
    assert.match(r.stderr, /partitions \d+\/\d+/);

    const status = cli("status", jobId, "--data-dir", dataDir);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /completed/);
    assert.match(status.stdout, /part +state +records/);
    const json = JSON.parse(cli("status", jobId, "--data-dir", dataDir, "--json").stdout) as {
      progress: { records: number };
    };
    assert.equal(json.progress.records, 3000);

    const events = cli("events", "--job", jobId, "--data-dir", dataDir);
    assert.match(events.stdout, /com\.batchinfer\.job\.created/);
    assert.equal(events.stdout.match(/com\.batchinfer\.job\.completed/g)?.length, 1);
    assert.match(cli("jobs", "--data-dir", dataDir).stdout, new RegExp(jobId));
    const verify = cli("verify", jobId, "--data-dir", dataDir);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(
      verify.stdout,
      /verified: each of the 3,000 input records is in the output exactly once/,
    );

    // Running the same command again finds the finished job instead of scoring twice.
    const again = cli(
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dataDir,
      "--partition-size",
      "64KiB",
      "--output-format",
      "csv",
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /existing job/);
    assert.equal(
      cli("events", "--job", jobId, "--data-dir", dataDir).stdout.match(/job\.completed/g)?.length,
      1,
    );
  });

  it("wrong arguments, a missing file, a bad model: one line saying what to fix, non-zero exit", async () => {
    const dataDir = path.join(root.dir, "errors");
    const cases: [string[], RegExp, number][] = [
      [["run", "--model", descriptor], /run needs --input FILE/, 2],
      [["run", "--input", input], /run needs --model DESCRIPTOR.json/, 2],
      [
        ["run", "--input", input, "--model", descriptor, "--workers", "zero"],
        /--workers must be a positive whole number/,
        2,
      ],
      [
        ["run", "--input", input, "--model", descriptor, "--partition-size", "lots"],
        /--partition-size must be a size like 64MiB/,
        2,
      ],
      [["run", "--input", input, "--model", descriptor, "--bogus"], /Unknown option '--bogus'/, 2],
      [
        ["run", "--input", path.join(root.dir, "nope.csv"), "--model", descriptor],
        /--input: input .*nope.csv does not exist/,
        2,
      ],
      [
        ["run", "--input", input, "--model", path.join(root.dir, "nope.json")],
        /--model: model descriptor .*nope.json does not exist/,
        2,
      ],
      // Nothing has run in this data dir: it is not created, and the message says so.
      [["status", "job-000000000000000000000000"], /--data-dir .*errors does not exist/, 2],
      [["frobnicate"], /unknown command "frobnicate"/, 2],
      [
        ["run", "--input", input, "--model", descriptor, "--backend", "oci"],
        /`run` scores a local file on this machine.*batch-infer submit/,
        2,
      ],
      [["jobs", "--backend", "cloud"], /BATCH_INFER_BACKEND must be "local" or "oci"/, 2],
      [
        ["submit", "--input", "nobucket", "--model", descriptor],
        /submit needs --input BUCKET\/OBJECT/,
        2,
      ],
      [["jobs", "--backend", "oci"], /environment variable OCI_NAMESPACE is required/, 2],
    ];
    const bad = path.join(root.dir, "bad-descriptor.json");
    await writeFile(
      bad,
      JSON.stringify({
        name: "x",
        version: "1",
        onnx: "m.onnx",
        input: { name: "features" },
        features: [],
        outputs: [],
      }),
    );
    cases.push([
      ["run", "--input", input, "--model", bad],
      /model descriptor invalid at \/features: must NOT have fewer than 1 items/,
      2,
    ]);
    for (const [args, message, code] of cases) {
      const r = cli(...args, "--data-dir", dataDir);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(
        r.stderr
          .trim()
          .split("\n")
          .filter((l) => !l.startsWith("Run ")).length,
        1,
        `one line: ${r.stderr}`,
      );
    }
  });
});
