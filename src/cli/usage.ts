/**
 * What `batch-infer --help` and `batch-infer <command> --help` print. One place
 * for the words, so the README, the overview and each command agree.
 */

const COMMON = `Common options:
  --backend B              local (default) or oci (also BATCH_INFER_BACKEND); oci reads the
                           OCI_* / BATCH_INFER_* variables and ~/.oci/config (see README)
  --data-dir DIR           state of the embedded default (default .batch-infer, where you stand)
  --log-level LEVEL        debug, info, warn (default), error or silent
  --json                   machine-readable output
  -h, --help               this help`;

const READ_OPTIONS = `  --format F               read the input as csv, tsv, jsonl or parquet (default: from its
                           name: .csv, .tsv/.tab, .jsonl/.ndjson, .parquet; a .gz name
                           is read without .gz, e.g. .csv.gz is CSV; a --delimiter says CSV)
  --delimiter D            CSV field delimiter: , (default) ; | : ^ ~, tab (default for
                           .tsv), space, '\\x01'; quote it for the shell: --delimiter ';'`;

const RUN_OPTIONS = `${READ_OPTIONS}
  --output DIR             also place predictions, errors, manifest and report in DIR
  --output-format F        jsonl (default), csv or parquet
  --workers N              most worker processes (default 2)
  --partition-size SIZE    target partition size, e.g. 64MiB, 1GB (default: run 16MiB, submit 64MiB)
  --checkpoint-every N     records per checkpoint / part object (default 50000; images 256)
  --batch-size N           records per onnxruntime call (default 4096; images 32)
  --max-errors N           fail the job past N bad records
  --max-error-rate F       fail the job past this fraction of bad records (e.g. 0.01 or 1%)
  --max-attempts N         failed attempts before a partition is given up (default 3)
  --key COL[,COL]          input columns copied into each output row (default: the model's)
  --threads N              onnxruntime intra-op threads per worker (default 1)
  --visibility SECONDS     partition lease; heartbeats extend it (default 60)
  --metrics-port PORT      serve the worker pool's Prometheus metrics on PORT while it runs`;

const EXIT_CODES = `Exit codes: 0 completed, 3 completed with errors (failed partitions: rerun --failed),
  1 failed (past the error threshold, or an internal error), 2 refused before anything ran
  (a bad argument, or a file, model or job that does not exist), 130 stopped by Ctrl-C.`;

/** One command's help: a synopsis line for the overview and its own page. */
interface CommandHelp {
  synopsis: string;
  summary: string;
  page: string;
}

const COMMANDS: Record<string, CommandHelp> = {
  run: {
    synopsis: "run --input FILE|DIR --model DESCRIPTOR.json [options]",
    summary: "score FILE (CSV, JSONL, Parquet) or DIR (images) end to end",
    page: `Usage: batch-infer run --input FILE|DIR --model DESCRIPTOR.json [options]

Score a local CSV, JSONL or Parquet file end to end on this machine: upload it to
the local input bucket, split it into partitions, score them with a pool of worker
processes, merge, and print a summary. Options, model and the file's header are
checked before anything is written. A gzip file (.csv.gz, .tsv.gz, .jsonl.gz) is
decompressed once into the input bucket (a real copy: its uncompressed size on
disk). A directory (a media library) is scored one file per record, e.g. by an
image model. Running the same command again resumes the same job (or finds it
finished). Ctrl-C stops gracefully; run it again to resume.

Options:
${RUN_OPTIONS}

${COMMON}

Example:
  batch-infer run --input customers.csv --model models/churn/descriptor.json --output results/
  batch-infer run --input export.txt --format csv --delimiter ';' --model models/churn/descriptor.json
  batch-infer run --input photos/ --model models/shapes/shapes.json --output-format parquet

${EXIT_CODES}
`,
  },
  submit: {
    synopsis: "submit --input BUCKET/OBJECT|BUCKET/PREFIX/ --model LOCATION [options]",
    summary: "create a job from an object (or the objects under a prefix) already in a bucket",
    page: `Usage: batch-infer submit --input BUCKET/OBJECT|BUCKET/PREFIX/ --model LOCATION [options]

Create a job from an object already in a bucket (what \`fn invoke\` on the
splitter does), or from every object under a prefix (a trailing "/": one record
per object, e.g. images). LOCATION is a descriptor path, oci://BUCKET@NAMESPACE/PATH/descriptor.json
or a Data Science model OCID. With --backend oci the workers on OKE score it; on
the embedded default nothing scores it until you run \`batch-infer resume JOB_ID\`.

Options:
  --output-bucket B        bucket for the outputs (default output)
  and the run options: --format, --delimiter, --output-format, --partition-size,
  --checkpoint-every, --batch-size, --max-errors, --max-error-rate, --max-attempts,
  --key, --visibility. A gzip object (.gz) is refused: it can't be split by byte
  ranges; upload it decompressed, or score the file with \`run\`.

${COMMON}
`,
  },
  resume: {
    synopsis: "resume JOB_ID [--workers N] [--output DIR]",
    summary: "score an existing job with local workers (after submit, or a stopped run)",
    page: `Usage: batch-infer resume JOB_ID [--workers N] [--threads N] [--output DIR]

Drive an existing job to the end with a pool of local worker processes: a job
created by \`submit\` on the embedded default, or one whose \`run\` was stopped.
Partitions resume from their last checkpoint. A finished job is left as it is.

${COMMON}

${EXIT_CODES}
`,
  },
  status: {
    synopsis: "status JOB_ID [--json]",
    summary: "partitions, attempts, records, rate",
    page: `Usage: batch-infer status JOB_ID [--json]

The job and each partition: state, records, bad records, progress, attempts,
last error. A job nobody is working on says so, and what to run.

${COMMON}
`,
  },
  jobs: {
    synopsis: "jobs [--json]",
    summary: "recent jobs",
    page: `Usage: batch-infer jobs [--json]

The 50 most recent jobs: id, state, when, input, model, records.

${COMMON}
`,
  },
  events: {
    synopsis: "events [--job JOB_ID] [--type TYPE] [--json]",
    summary: "the event log (on OCI: the completion stream)",
    page: `Usage: batch-infer events [--job JOB_ID] [--type TYPE] [--json]

The event log: object uploads, job created, partition done/failed, job completed.
TYPE is a full event type or its short form:
  createobject       com.oraclecloud.objectstorage.createobject
  job.created        com.batchinfer.job.created
  partition.done     com.batchinfer.partition.done
  partition.failed   com.batchinfer.partition.failed
  job.completed      com.batchinfer.job.completed

${COMMON}
`,
  },
  verify: {
    synopsis: "verify JOB_ID [--json]",
    summary: "prove every input record is in the output exactly once",
    page: `Usage: batch-infer verify JOB_ID [--json]

Check a finished job's promise: every input record is in the predictions or the
errors exactly once, and counts and checksums match the manifest. Exit 0 when
verified, 1 when not.

${COMMON}
`,
  },
  rerun: {
    synopsis: "rerun JOB_ID [--failed] [--run-tag TAG]",
    summary: "rerun failed partitions (--failed), or score the same input as a new job",
    page: `Usage: batch-infer rerun JOB_ID --failed
       batch-infer rerun JOB_ID [--run-tag TAG]

--failed: put a completed_with_errors job's failed partitions back in play
(they resume from their last checkpoint) and drive the job to completion again.

Without --failed: score the job's input again as a new job, with the same model
and options (e.g. after a fix outside the model). TAG names the run and is part
of the new job id (default: rerun-<time>); the same TAG again finds that job.

Options:
  --failed                 only the failed partitions, in the same job
  --run-tag TAG            name of the new run (without --failed)
  --workers N, --threads N the local pool (embedded default)
  --output DIR             also place the outputs in DIR

${COMMON}

${EXIT_CODES}
`,
  },
  "init-model": {
    synopsis: "init-model --onnx MODEL.onnx --sample DATA.csv --out DIR/descriptor.json",
    summary: "write a model descriptor from an ONNX file and a sample of the input",
    page: `Usage: batch-infer init-model --onnx MODEL.onnx --sample DATA.csv --out DIR/descriptor.json

Write a descriptor skeleton: the model's input and outputs (names, shapes, types)
from the ONNX file, the CSV header matched to feature columns (numbers, booleans,
categories with the values seen in the sample), a key column guessed from an
id-like column, and for a [N, 2] probabilities output (scikit-learn, XGBoost)
index 1, i.e. P(class 1). Notes on what to check are printed and kept in the
descriptor's "$comment" fields. The model is then loaded and run once on the
descriptor, as \`run\` would.

Options:
  --features COL[,COL]     the feature columns, in the order the model was trained on
                           (default: every numeric, boolean or category column but the key)
  --key COL[,COL]          key columns copied into each output row (default: guessed)
  --name NAME              model name (default: the ONNX file's name)
  --force                  overwrite --out if it exists
${READ_OPTIONS}

Example:
  batch-infer init-model --onnx model.onnx --sample loans.csv --out models/loans/descriptor.json
`,
  },
  refresh: {
    synopsis: "refresh --corpus DIR|BUCKET/PREFIX/ --model DESCRIPTOR.json [--watch] [options]",
    summary:
      "embed a corpus's new and changed documents; the complete set and a delta per generation",
    page: `Usage: batch-infer refresh --corpus DIR|BUCKET/PREFIX/ --model DESCRIPTOR.json [--watch] [options]

Keep a document corpus's embeddings fresh with a text-embedding model. The corpus
is listed and joined with its last state: only new and changed documents are
embedded (a document whose etag changed but whose bytes did not is not), unchanged
vectors are carried over, deleted documents are reported. Each refresh writes a
generation: the complete embedding set, a delta (upserts, deletes) for a vector
index, and the state; a model change embeds everything again. A document that
fails is in failed.jsonl and is embedded again by the next refresh.

--watch refreshes a directory again whenever it changes; changes during a refresh
make one more refresh after it. With --backend oci this asks for a refresh as the
corpus Events rule does (the workers on OKE embed; the job's merge finishes it).

Options:
  --output-bucket B        bucket of the refresh objects (default output)
  --output-prefix P        their prefix (default embeddings): P/<corpus key>/head.json, v<N>/…
  --partition-records N    documents per partition (default 1000)
  --checkpoint-every N     documents per checkpoint (default 1000)
  --workers N, --threads N, --visibility SECONDS, --max-attempts N (as for run)

${COMMON}

Exit codes: 0 refreshed (or up to date), 3 some documents failed (retried next time),
  2 refused before anything ran, 130 stopped by Ctrl-C (run it again to go on).
`,
  },
};

/** Names of the commands, in the order the overview lists them. */
export const COMMAND_NAMES = Object.keys(COMMANDS);

/** The overview `batch-infer --help` prints. */
export function overviewUsage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.synopsis}\n      ${c.summary}`);
  return `Usage: batch-infer <command> [options]

Commands:
${lines.join("\n")}

\`batch-infer <command> --help\` shows a command's options.

run options:
${RUN_OPTIONS}

${COMMON}

${EXIT_CODES}
`;
}

/** A command's own help page, or undefined for an unknown command. */
export function commandUsage(command: string): string | undefined {
  return COMMANDS[command]?.page;
}
