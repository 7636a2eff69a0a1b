/**
 * `batch-infer init-model --onnx MODEL.onnx --sample DATA.csv --out DIR/descriptor.json`:
 * read the model's inputs and outputs with onnxruntime, profile a sample of the
 * input, write a descriptor skeleton, then check it the way `run` would (load,
 * one onnxruntime run) and featurize and score the sample with it.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, open, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { InvalidArgumentError, ModelError, PipelineError } from "../core/errors.ts";
import { delimiterFromName, formatFromName, withoutGzipSuffix } from "../core/job-spec.ts";
import type { CsvDelimiter } from "../core/records.ts";
import { createCsvFeaturizer } from "../model/csv-featurizer.ts";
import { loadTabularModel } from "../model/descriptor.ts";
import { createJsonlFeaturizer, delimiterHint } from "../model/featurizer.ts";
import { KeyBatch } from "../model/key-batch.ts";
import {
  createFieldSpans,
  decodeField,
  delimiterByte,
  delimiterFlag,
  parseCsvHeader,
  splitCsvLine,
} from "../records/csv-fields.ts";
import { gunzipHead, isGzipFile } from "../runner/gunzip-input.ts";
import { openTabularSession, scoreTabular } from "../tasks/tabular/tabular-task.ts";
import { parseDelimiter, parseInputFormat } from "./args.ts";
import { profileColumns } from "./column-profile.ts";
import {
  buildSkeleton,
  type ModelSignature,
  type Skeleton,
  type ValueSignature,
} from "./descriptor-skeleton.ts";
import { requireFile, userCwd } from "./paths.ts";

/** Sample bytes read from the start of the input, and rows profiled at most. */
const SAMPLE_BYTES = 4 * 1024 * 1024;
const SAMPLE_ROWS = 2000;

/** The flags init-model reads (paths already absolute). */
export interface InitModelFlags {
  onnx?: string | undefined;
  sample?: string | undefined;
  out?: string | undefined;
  features?: string | undefined;
  key?: string | undefined;
  name?: string | undefined;
  force?: boolean | undefined;
  json?: boolean | undefined;
  format?: string | undefined;
  delimiter?: string | undefined;
}

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** Inputs and outputs of an ONNX file, as onnxruntime (1.22+) reports them. */
export async function readModelSignature(onnxPath: string): Promise<ModelSignature> {
  const ort = createRequire(import.meta.url)(
    "onnxruntime-node",
  ) as typeof import("onnxruntime-node");
  let session: import("onnxruntime-node").InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnxPath, { graphOptimizationLevel: "disabled" });
  } catch (err) {
    throw new ModelError(
      `onnxruntime can't load ${onnxPath}: ${(err as Error).message.split("\n")[0]}`,
      { cause: err },
    );
  }
  const toSig = (m: (typeof session.inputMetadata)[number]): ValueSignature =>
    m.isTensor
      ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] }
      : { name: m.name, isTensor: false };
  try {
    return {
      inputs: session.inputMetadata.map(toSig),
      outputs: session.outputMetadata.map(toSig),
    };
  } finally {
    await session.release();
  }
}

/** A sample of the input: its columns and the first rows as text, plus the raw lines. */
export interface Sample {
  format: "csv" | "jsonl";
  /** CSV: the field delimiter. */
  delimiter: CsvDelimiter;
  header: string[];
  rows: string[][];
  /** Each sampled data line's bytes (for the featurizer check). */
  lines: Buffer[];
}

function jsonText(v: unknown): string {
  if (v === undefined || v === null) return "";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** How to read a sample, when its name doesn't say (the `run` flags of the same names). */
export interface SampleOptions {
  format?: "csv" | "tsv" | "jsonl" | "parquet" | undefined;
  delimiter?: CsvDelimiter | undefined;
}

/** The first SAMPLE_BYTES of a file (decompressed when it is gzip), and whether that is all of it. */
async function sampleBytes(file: string): Promise<{ buf: Buffer; full: boolean }> {
  if (await isGzipFile(file)) {
    const head = await gunzipHead(file, SAMPLE_BYTES);
    return { buf: head.bytes, full: head.complete };
  }
  const handle = await open(file, "r");
  try {
    const chunk = Buffer.alloc(SAMPLE_BYTES);
    const { bytesRead } = await handle.read(chunk, 0, SAMPLE_BYTES, 0);
    return { buf: chunk.subarray(0, bytesRead), full: bytesRead < SAMPLE_BYTES };
  } finally {
    await handle.close();
  }
}

/**
 * Read the head of a CSV or JSONL file (gzipped or not): header and up to SAMPLE_ROWS
 * rows. The format and delimiter come from `options`, else from the name as `run`
 * reads it (.tsv is tab-separated), else JSON Lines when it starts with "{".
 */
export async function readSample(file: string, options: SampleOptions = {}): Promise<Sample> {
  const name = withoutGzipSuffix(path.basename(file));
  const named = formatFromName(name);
  if (options.format === "parquet" || (options.format === undefined && named === "parquet")) {
    throw new InvalidArgumentError(
      `--sample ${file}: init-model reads a CSV or JSON Lines sample; give it the first rows of the Parquet file as CSV (e.g. pandas: pd.read_parquet(f).head(2000).to_csv("sample.csv", index=False))`,
    );
  }
  const { buf, full } = await sampleBytes(file);
  // Drop a line cut by the read limit.
  const end = full ? buf.length : buf.lastIndexOf(0x0a) + 1;
  const spans: { s: number; e: number }[] = [];
  for (let s = 0; s < end; ) {
    let e = buf.indexOf(0x0a, s);
    if (e < 0 || e > end) e = end;
    const next = e + 1;
    let stop = e;
    if (stop > s && buf[stop - 1] === 0x0d) stop--;
    if (stop > s) spans.push({ s, e: stop });
    s = next;
  }
  const jsonl =
    options.format === "jsonl" ||
    (options.format === undefined &&
      (named === "jsonl" || /\.json$/i.test(name) || buf[0] === 0x7b));
  const delimiter: CsvDelimiter =
    options.format === "tsv" ? "\t" : (options.delimiter ?? delimiterFromName(name) ?? ",");
  if (jsonl) {
    const header: string[] = [];
    const objects: Record<string, unknown>[] = [];
    const lines: Buffer[] = [];
    for (const { s, e } of spans.slice(0, SAMPLE_ROWS)) {
      try {
        const o = JSON.parse(buf.toString("utf8", s, e)) as Record<string, unknown>;
        if (o === null || typeof o !== "object" || Array.isArray(o)) continue;
        for (const k of Object.keys(o)) if (!header.includes(k)) header.push(k);
        objects.push(o);
        lines.push(buf.subarray(s, e));
      } catch {
        // A line that is not JSON says nothing about the columns; `run` reports it as a bad record.
      }
    }
    return {
      format: "jsonl",
      delimiter,
      header,
      rows: objects.map((o) => header.map((k) => jsonText(o[k]))),
      lines,
    };
  }
  const first = spans[0];
  if (!first) throw new InvalidArgumentError(`--sample ${file} has no header line`);
  const byte = delimiterByte(delimiter);
  const header = parseCsvHeader(buf, first.s, first.e, byte);
  const fields = createFieldSpans(header.length + 1);
  const rows: string[][] = [];
  const lines: Buffer[] = [];
  for (const { s, e } of spans.slice(1, SAMPLE_ROWS + 1)) {
    if (splitCsvLine(buf, s, e, fields, byte) !== "ok") continue;
    const row: string[] = [];
    try {
      for (let f = 0; f < fields.count; f++) {
        row.push(
          decodeField(
            buf,
            fields.starts[f] as number,
            fields.ends[f] as number,
            fields.kinds[f] as number,
          ),
        );
      }
    } catch {
      continue;
    }
    rows.push(row);
    lines.push(buf.subarray(s, e));
  }
  const hint = header.length === 1 ? delimiterHint(header, delimiter) : "";
  if (hint) {
    throw new InvalidArgumentError(
      `--sample ${file}: the header "${(header[0] ?? "").slice(0, 60)}" is one column${hint.replace(" (input.delimiter in a job spec)", "")}`,
    );
  }
  return { format: "csv", delimiter, header, rows, lines };
}

/** What the sample check found: rows scored, bad rows and the first reasons, first scores. */
interface SampleCheck {
  rows: number;
  bad: number;
  reasons: string[];
  scores: { column: string; values: number[] }[];
}

async function checkOnSample(descriptorPath: string, sample: Sample): Promise<SampleCheck> {
  const model = await loadTabularModel(descriptorPath);
  const d = model.descriptor;
  const keyColumns = d.keyColumns ?? [];
  const featurizer =
    sample.format === "csv"
      ? createCsvFeaturizer(d, keyColumns, sample.header, sample.delimiter)
      : createJsonlFeaturizer(d, keyColumns);
  const width = featurizer.width;
  const features = new Float32Array(Math.max(1, sample.lines.length) * width);
  const keys = new KeyBatch();
  let rows = 0;
  let bad = 0;
  const reasons: string[] = [];
  for (const line of sample.lines) {
    const mark = keys.length;
    const reason = featurizer.featurize(line, 0, line.length, features, rows * width, keys);
    if (reason === undefined) rows++;
    else {
      keys.truncate(mark);
      bad++;
      if (reasons.length < 3 && !reasons.includes(reason)) reasons.push(reason);
    }
  }
  // Opening checks the descriptor against the model (a probe batch) and names a mismatch.
  const opened = await openTabularSession(model, { thread: false });
  try {
    const scored = rows > 0 ? await scoreTabular(opened, model, features, rows) : [];
    return {
      rows,
      bad,
      reasons,
      scores: d.outputs.map((o, i) => ({
        column: o.column,
        values: [...(scored[i] ?? new Float64Array(0)).subarray(0, 3)],
      })),
    };
  } finally {
    await opened.session.close();
  }
}

function shown(p: string): string {
  const rel = path.relative(userCwd(), p);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}

function list(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
}

function describe(skeleton: Skeleton, sig: ModelSignature): string[] {
  const sigText = (s: ValueSignature) =>
    s.isTensor
      ? `${s.name} ${s.type} [${(s.shape ?? []).map((d) => (typeof d === "number" && d >= 0 ? d : typeof d === "string" && d ? d : "N")).join(", ")}]`
      : `${s.name} (map/sequence)`;
  const d = skeleton.descriptor;
  const features = d.features.map((f) =>
    f.type === "category"
      ? `${f.column} (category ×${f.categories.length})`
      : `${f.column} (${f.type})`,
  );
  return [
    `  model     ${sig.inputs.map(sigText).join(", ")} → ${sig.outputs.map(sigText).join(", ")}`,
    `  key       ${d.keyColumns?.join(", ") ?? "(none: _offset)"}`,
    `  features  ${d.features.length} columns, ${skeleton.width} values${skeleton.modelWidth !== undefined ? ` (the model takes ${skeleton.modelWidth})` : ""}: ${features.join(", ")}`,
    `  outputs   ${d.outputs.map((o) => `${o.name}[${o.index ?? 0}] → ${o.column}`).join(", ")}${d.label ? `; ${d.label.column} = ${d.label.labels[1]} when ${d.label.from} > ${d.label.threshold}` : ""}`,
  ];
}

/** Run `init-model`; returns the exit code. */
export async function cmdInitModel(v: InitModelFlags): Promise<number> {
  if (!v.onnx || !v.sample || !v.out) {
    throw new InvalidArgumentError(
      "init-model needs --onnx MODEL.onnx, --sample DATA.csv and --out DIR/descriptor.json",
    );
  }
  const onnx = requireFile("onnx", v.onnx, "ONNX file");
  const sampleFile = requireFile("sample", v.sample, "sample file");
  let target = path.resolve(v.out);
  if (existsSync(target) && statSync(target).isDirectory())
    target = path.join(target, "descriptor.json");
  if (existsSync(target) && !v.force) {
    throw new InvalidArgumentError(
      `--out ${target} exists; pass --force to overwrite it, or name another file`,
    );
  }
  const sampleOptions = {
    format: parseInputFormat(v.format),
    delimiter: parseDelimiter(v.delimiter),
  };
  const sig = await readModelSignature(onnx);
  const sample = await readSample(sampleFile, sampleOptions);
  if (sample.rows.length === 0)
    throw new InvalidArgumentError(`--sample ${sampleFile} has no rows to learn the columns from`);
  const features = list(v.features);
  const keyColumns = list(v.key);
  const skeleton = buildSkeleton(sig, profileColumns(sample.header, sample.rows), {
    name: v.name ?? path.basename(onnx).replace(/\.onnx$/i, ""),
    onnx: path.relative(path.dirname(target), onnx).split(path.sep).join("/"),
    ...(features ? { features } : {}),
    ...(keyColumns ? { keyColumns } : {}),
  });
  if (skeleton.descriptor.onnx.startsWith("../")) {
    skeleton.notes.push(
      `the descriptor names the ONNX file as ${skeleton.descriptor.onnx}: keep the two together (copy the .onnx next to the descriptor and set "onnx") before uploading them to a bucket`,
    );
  }
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, `${JSON.stringify(skeleton.descriptor, null, 2)}\n`);

  let check: SampleCheck | undefined;
  let checkError: string | undefined;
  try {
    check = await checkOnSample(target, sample);
  } catch (err) {
    if (!(err instanceof PipelineError)) throw err;
    checkError = err.message;
  }
  if (v.json) {
    out(
      JSON.stringify(
        { descriptor: target, notes: skeleton.notes, signature: sig, check, checkError },
        null,
        2,
      ),
    );
    return checkError ? 1 : 0;
  }
  out(`wrote ${shown(target)} (a draft: check it against how the model was trained)`);
  for (const line of describe(skeleton, sig)) out(line);
  out("notes:");
  for (const n of skeleton.notes) out(`  - ${n}`);
  if (checkError) {
    out(`not runnable yet: ${checkError}`);
    out("fix the descriptor (or pass --features/--key) and run init-model again with --force");
    return 1;
  }
  if (check) {
    const bad = check.bad
      ? `, ${check.bad} would be bad records (${check.reasons.join("; ")})`
      : ", no bad records";
    out(
      `checked with onnxruntime on ${check.rows + check.bad} sample rows: ${check.rows} scored${bad}`,
    );
    for (const s of check.scores) {
      out(`  first ${s.column}: ${s.values.map((x) => Number(x.toPrecision(4))).join(", ")}`);
    }
  }
  // The flags that read the sample read the input the same way.
  const readFlags = [
    sampleOptions.format ? ` --format ${sampleOptions.format}` : "",
    sampleOptions.delimiter ? ` --delimiter ${delimiterFlag(sampleOptions.delimiter)}` : "",
  ].join("");
  out(
    `next: batch-infer run --input ${shown(sampleFile)}${readFlags} --model ${shown(target)} --output results/`,
  );
  return 0;
}
