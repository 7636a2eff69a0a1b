/**
 * The CLI as a new user meets it: per-command help, argument errors that say
 * what to fix (and exit 2), paths from where `npm run cli` was started, a job
 * made by `submit` that `status` calls idle and `resume` scores, `rerun` as a
 * new job, worker log lines kept off the progress bar.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { joinNegativeValues, parseSize } from "../src/cli/args.ts";
import { forUser, resolveEventType } from "../src/cli/messages.ts";
import { dataDirFlag, userPath } from "../src/cli/paths.ts";
import { compactNumber, createProgressReporter } from "../src/cli/progress.ts";
import { COMMAND_NAMES, commandUsage } from "../src/cli/usage.ts";
import type { PartitionRecord } from "../src/core/records.ts";
import { failedPartitionsMessage } from "../src/pipeline/failed-partitions.ts";
import type { JobProgress } from "../src/runner/local-runner.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
let input: string;

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
  input = await customerCsv(root.dir, 2000, 83);
});
after(() => root.cleanup());

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, FORCE_COLOR: "0", npm_lifecycle_event: "", ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("CLI helpers", () => {
  it("compactNumber takes the next unit when rounding reaches 1000", () => {
    assert.equal(compactNumber(812), "812");
    assert.equal(compactNumber(9999), "9999");
    assert.equal(compactNumber(9999.6), "10.0k");
    assert.equal(compactNumber(35_449), "35.4k");
    assert.equal(compactNumber(999_949), "999.9k");
    assert.equal(compactNumber(999_950), "1.00M");
    assert.equal(compactNumber(999_994_999), "999.99M");
    assert.equal(compactNumber(999_995_000), "1.00G");
  });

  it("sizes take T/TB/TiB; a negative value after a flag is its value", () => {
    assert.equal(parseSize("x", "1TB"), 1e12);
    assert.equal(parseSize("x", "1T"), 1e12);
    assert.equal(parseSize("x", "500GB"), 5e11);
    assert.equal(parseSize("x", "2TiB"), 2 * 1024 ** 4);
    assert.throws(() => parseSize("partition-size", "1PB"), /--partition-size must be a size/);
    const opts = new Set(["workers", "max-errors"]);
    assert.deepEqual(joinNegativeValues(["run", "--workers", "-1", "--json"], opts), [
      "run",
      "--workers=-1",
      "--json",
    ]);
    // A flag that takes no value, or a non-numeric dash word, is left alone.
    assert.deepEqual(joinNegativeValues(["--json", "-1", "--workers", "-h"], opts), [
      "--json",
      "-1",
      "--workers",
      "-h",
    ]);
  });

  it("event types: short forms resolve, unknown ones are refused with the list", () => {
    assert.equal(resolveEventType("job.completed"), "com.batchinfer.job.completed");
    assert.equal(resolveEventType("com.batchinfer.job.created"), "com.batchinfer.job.created");
    assert.throws(
      () => resolveEventType("job.finished"),
      /--type "job.finished" is not an event type; use one of createobject, job.created, partition.done, partition.failed, job.completed/,
    );
  });

  it("pipeline messages name the flags a CLI user set", () => {
    assert.equal(
      forUser("12 bad records exceed errorThreshold.maxCount 5 (see the errors output)"),
      "12 bad records exceed the --max-errors limit of 5 (errorThreshold.maxCount) (see the errors output)",
    );
    assert.match(
      forUser("job spec invalid at /partitionBytes: must be <= 17179869184 (schema x)"),
      /^--partition-size: job spec invalid at \/partitionBytes/,
    );
  });

  it("a failed partition's message names it and counts its attempts in this run", () => {
    const part = (index: number, outcomes: string[], retryFromEpoch?: number) =>
      ({
        index,
        ...(retryFromEpoch !== undefined ? { retryFromEpoch } : {}),
        attempts: outcomes.map((o, i) => ({
          epoch: i + 1,
          worker: "w",
          startedAt: "",
          ...(o === "open" ? {} : { endedAt: "2026-01-01T00:00:00Z", outcome: o }),
          fromOffset: 0,
        })),
      }) as unknown as PartitionRecord;
    assert.match(
      failedPartitionsMessage("job-1", [part(0, ["error"])]),
      /^partition 0 failed after 1 attempt; .*`rerun job-1 --failed`$/,
    );
    // Hand-backs don't count, nor attempts before a rerun --failed.
    assert.match(
      failedPartitionsMessage("job-1", [
        part(2, ["error", "handed_back", "lost", "open"]),
        part(5, ["lost", "error", "error", "error"], 1),
      ]),
      /^partitions 2, 5 failed after 3 attempts each;/,
    );
    assert.match(
      failedPartitionsMessage("job-1", [part(1, ["error"]), part(4, ["error", "error"])]),
      /^partitions 1 \(1 attempt\), 4 \(2 attempts\) failed;/,
    );
  });

  it("relative paths resolve from where `npm run cli` was started", () => {
    const env = { npm_lifecycle_event: "cli", INIT_CWD: "/home/me/data" };
    assert.equal(userPath("small.csv", env), "/home/me/data/small.csv");
    assert.equal(userPath("/abs/x.csv", env), "/abs/x.csv");
    // Any other npm script keeps the process's own directory.
    assert.equal(
      userPath("small.csv", { npm_lifecycle_event: "test", INIT_CWD: "/elsewhere" }),
      path.resolve("small.csv"),
    );
    assert.equal(dataDirFlag(path.resolve(".batch-infer")), "");
    assert.equal(dataDirFlag("/tmp/state"), " --data-dir /tmp/state");
  });

  it("on a terminal, log lines print above the bar, which is drawn again under them", () => {
    const writes: string[] = [];
    const stream = {
      isTTY: true,
      columns: 200,
      write: (s: string) => writes.push(s) > 0,
    } as unknown as NodeJS.WriteStream;
    const reporter = createProgressReporter(stream);
    const p: JobProgress = {
      jobId: "job-1",
      state: "running",
      records: 10,
      errors: 0,
      bytesDone: 1,
      bytesTotal: 2,
      partitions: 2,
      partitionsDone: 1,
      partitionsFailed: 0,
      workers: 2,
      rate: 5,
      elapsedMs: 1000,
    };
    reporter.update(p);
    reporter.log('{"level":"warn","msg":"from a worker"}');
    const bar = (writes[0] ?? "").replace("\r\x1b[2K", "");
    assert.match(bar, /50\.0% 10 records/);
    assert.equal(writes[1], `\r\x1b[2K{"level":"warn","msg":"from a worker"}\n${bar}`);
    reporter.done(p);
    assert.equal(writes.at(-1), "\n");
  });

  it("every command has its own help page", () => {
    for (const c of COMMAND_NAMES)
      assert.match(commandUsage(c) ?? "", new RegExp(`batch-infer ${c}`));
    assert.equal(commandUsage("frobnicate"), undefined);
  });
});

describe("CLI messages and commands", () => {
  it("--help per command, and argument errors that say what to fix (exit 2)", async () => {
    const help = cli(["rerun", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: batch-infer rerun JOB_ID --failed/);
    assert.match(help.stdout, /--run-tag TAG/);
    assert.match(cli(["help", "init-model"]).stdout, /--sample DATA.csv/);

    const runHelp = cli(["run", "--help"]).stdout;
    assert.match(runHelp, /--format F +read the input as csv, tsv, jsonl or parquet/);
    assert.match(runHelp, /--delimiter D +CSV field delimiter/);

    const dataDir = path.join(root.dir, "never");
    const file = path.join(root.dir, "a-file");
    await writeFile(file, "x");
    const semicolons = path.join(root.dir, "semicolons.csv");
    await writeFile(semicolons, (await readFile(input, "utf8")).replaceAll(",", ";"));
    const cases: [string[], RegExp][] = [
      [
        ["run", "--input", input, "--model", descriptor, "--delimiter", "ab"],
        /--delimiter must be one character of , ; \| : \^ ~ \(quote it: --delimiter ';'\)/,
      ],
      [
        ["run", "--input", input, "--model", descriptor, "--format", "xml"],
        /--format must be one of csv, tsv, jsonl, parquet/,
      ],
      [
        ["run", "--input", file, "--model", descriptor],
        /--format: job spec invalid at \/input\/format: cannot tell the input format of "a-file"/,
      ],
      [
        ["run", "--input", semicolons, "--model", descriptor],
        /feature column "age" is not in the input; .*probably separated by ';', not ','; set --delimiter ';'/,
      ],
      [
        ["run", "--input", input, "--model", descriptor, "--workers", "-1"],
        /--workers must be a positive whole number, got "-1"/,
      ],
      [
        ["run", "--input", input, "--model", descriptor, "--max-errors", "-5"],
        /--max-errors must be a whole number >= 0, got "-5"/,
      ],
      [["jobs", "--log-level", "verbose"], /--log-level must be one of debug, info, warn, error/],
      [
        ["run", "--input", input, "--model", descriptor, "--output", file],
        /--output .*a-file is a file; --output names a directory/,
      ],
      [["jobs"], /--data-dir .*never does not exist: nothing has run there yet/],
      [["events", "--type", "job.completed"], /--data-dir .*never does not exist/],
      [["verify", "job-000000000000000000000000"], /--data-dir .*never does not exist/],
    ];
    for (const [args, message] of cases) {
      const r = cli([...args, "--data-dir", dataDir]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, "no stack trace");
    }
    assert.equal(existsSync(dataDir), false, "a mistyped --data-dir is not created");

    // Under `npm run cli`, a relative path is where the user stands, and a miss says where it looked.
    const sub = path.join(root.dir, "sub");
    await mkdir(sub);
    const missing = cli(["run", "--input", "small.csv", "--model", descriptor], {
      npm_lifecycle_event: "cli",
      INIT_CWD: sub,
    });
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      new RegExp(`--input: input file ${path.join(sub, "small.csv")} does not exist`),
    );
  });

  it("submit leaves a job that status calls idle (no ETA); resume scores it; rerun makes a new job", async () => {
    const dataDir = path.join(root.dir, "state");
    const first = cli([
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dataDir,
      "--log-level",
      "info",
    ]);
    assert.equal(first.code, 0, first.stderr);
    // Worker log lines (LOG_LEVEL reaches the workers) come through whole, one per line.
    const workerLines = first.stderr.split("\n").filter((l) => l.includes('"claimed partition"'));
    assert.ok(workerLines.length >= 1, first.stderr);
    for (const l of workerLines) assert.doesNotThrow(() => JSON.parse(l), l);

    // `run` stages its input under a name derived from its content: ask the job.
    const firstId = /job (job-[0-9a-f]{24})/.exec(first.stdout)?.[1] as string;
    const staged = JSON.parse(cli(["status", firstId, "--json", "--data-dir", dataDir]).stdout) as {
      job: { input: { bucket: string; object: string } };
    };
    const object = `${staged.job.input.bucket}/${staged.job.input.object}`;
    const submitted = cli([
      "submit",
      "--input",
      object,
      "--model",
      descriptor,
      "--partition-size",
      "32KiB",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const jobId = /created job (job-[0-9a-f]{24})/.exec(submitted.stdout)?.[1] as string;
    assert.ok(jobId, submitted.stdout);
    assert.match(submitted.stdout, new RegExp(`batch-infer resume ${jobId} --data-dir`));

    const idle = cli(["status", jobId, "--data-dir", dataDir]);
    assert.equal(idle.code, 0, idle.stderr);
    assert.match(idle.stdout, /nobody is working on this job: `batch-infer resume/);
    assert.match(idle.stdout, /workers 0/);
    assert.doesNotMatch(idle.stdout, /ETA/);

    const outDir = path.join(root.dir, "resumed");
    const resumed = cli(["resume", jobId, "--data-dir", dataDir, "--output", outDir]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`job ${jobId} completed`));
    assert.match(resumed.stdout, /2,000 scored, 0 bad/);
    const predictions = await readFile(path.join(outDir, "predictions.jsonl"), "utf8");
    assert.equal(predictions.split("\n").filter(Boolean).length, 2000);
    assert.doesNotMatch(cli(["status", jobId, "--data-dir", dataDir]).stdout, /nobody/);

    const rerun = cli(["rerun", jobId, "--run-tag", "second", "--data-dir", dataDir]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const newId = /created job (job-[0-9a-f]{24}) \(run tag second\)/.exec(rerun.stdout)?.[1];
    assert.ok(newId && newId !== jobId, rerun.stdout);
    assert.match(rerun.stdout, new RegExp(`job ${newId} completed`));
    const again = cli(["rerun", jobId, "--run-tag", "second", "--data-dir", dataDir]);
    assert.match(again.stdout, new RegExp(`found existing job ${newId}`));
    const completed = cli(["events", "--type", "job.completed", "--data-dir", dataDir]);
    assert.equal(completed.stdout.split("\n").filter(Boolean).length, 3, completed.stdout);
  });

  it("Ctrl-C in a terminal (SIGINT to the whole foreground group): workers hand back, no attempt is left open", async () => {
    const dataDir = path.join(root.dir, "ctrl-c");
    const big = await customerCsv(root.dir, 60_000, 84);
    const args = ["run", "--input", big, "--model", descriptor, "--data-dir", dataDir];
    // Detached: the CLI leads its own process group, as a shell's foreground job does.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        ...args,
        // Few, slow partitions (a checkpoint every 100 records): the one just claimed is
        // still in progress when the stop reaches its worker, however loaded the machine.
        "--partition-size",
        "4MiB",
        "--checkpoint-every",
        "100",
        "--batch-size",
        "32",
        "--log-level",
        "info",
      ],
      {
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, npm_lifecycle_event: "" },
      },
    );
    let stderr = "";
    let signalled = false;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!signalled && stderr.includes('"claimed partition"')) {
        signalled = true;
        process.kill(-(child.pid as number), "SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 130, stderr.slice(-3000));
    const status = JSON.parse(
      cli(["status", "--json", jobIdOf(stderr), "--data-dir", dataDir]).stdout,
    ) as {
      partitions: { attempts: { outcome?: string; endedAt?: string }[] }[];
    };
    const attempts = status.partitions.flatMap((p) => p.attempts);
    assert.ok(attempts.length > 0);
    for (const a of attempts)
      assert.ok(a.outcome === "done" || a.outcome === "handed_back", JSON.stringify(a));
    assert.ok(
      attempts.some((a) => a.outcome === "handed_back"),
      "a partition was in progress and handed back",
    );
    // Running it again resumes and completes.
    const again = cli([
      ...args,
      "--partition-size",
      "4MiB",
      "--checkpoint-every",
      "100",
      "--batch-size",
      "32",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /60,000 scored/);
  });
});

function jobIdOf(log: string): string {
  const id = /"jobId":"(job-[0-9a-f]{24})"/.exec(log)?.[1];
  assert.ok(id, log.slice(0, 2000));
  return id;
}
