/**
 * Generates a seeded synthetic dataset, streamed to a file (or stdout with `--out -`):
 *
 *   tsx scripts/gen-data.ts --kind customers|numeric --rows N [--seed S] [--format csv|jsonl] --out PATH
 *
 * A summary (rows, bytes, rows/s) goes to stderr so stdout can carry the data.
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { describeError, InvalidArgumentError } from "../src/core/errors.ts";
import { type DatasetFormat, type DatasetKind, writeDataset } from "../src/model/datasets.ts";

function intFlag(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new InvalidArgumentError(`--${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

function isUsageError(err: unknown): boolean {
  if (err instanceof InvalidArgumentError) return true;
  // parseArgs throws TypeErrors coded ERR_PARSE_ARGS_*; those are usage errors too.
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** Runs the CLI with `argv` (without node and script); resolves when the file is complete. */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kind: { type: "string" },
      rows: { type: "string" },
      seed: { type: "string" },
      format: { type: "string", default: "csv" },
      out: { type: "string" },
    },
    strict: true,
  });
  const kind = values.kind;
  if (kind !== "customers" && kind !== "numeric") {
    throw new InvalidArgumentError("--kind must be customers or numeric");
  }
  const format = values.format;
  if (format !== "csv" && format !== "jsonl") {
    throw new InvalidArgumentError("--format must be csv or jsonl");
  }
  if (values.out === undefined)
    throw new InvalidArgumentError("--out PATH is required (- for stdout)");
  const rows = intFlag("rows", values.rows);
  const seed = intFlag("seed", values.seed, 1);
  const started = performance.now();
  const result = await writeDataset({
    kind: kind satisfies DatasetKind,
    format: format satisfies DatasetFormat,
    rows,
    seed,
    out: values.out === "-" ? process.stdout : values.out,
  });
  const seconds = (performance.now() - started) / 1000;
  const rate = Math.round(result.rows / Math.max(seconds, 1e-9));
  console.error(
    `wrote ${result.rows} ${kind} rows (${(result.bytes / 1e6).toFixed(1)} MB ${format}) to ${values.out} in ${seconds.toFixed(2)}s (${rate} rows/s)`,
  );
}

if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(describeError(err));
    process.exitCode = isUsageError(err) ? 2 : 1;
  });
}
