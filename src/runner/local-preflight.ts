/**
 * What `run` checks before it stages a local file: the options as a job spec, the
 * model (loaded, and opened by onnxruntime as the workers will), and the file's header
 * against the model's columns — the splitter's own checks, run on the local file
 * through a read-only view of it. A run refused here has written nothing: no object
 * in the input bucket, no event, no job.
 */
import { open, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { InvalidArgumentError } from "../core/errors.ts";
import { type JobSpecInput, resolveJobSpec, withoutGzipSuffix } from "../core/job-spec.ts";
import type { Logger } from "../core/log.ts";
import type { ByteRange, ObjectInfo, ObjectStore } from "../ports/object-store.ts";
import { sourceModule } from "../sources/registry.ts";
import { checkModelOpens, taskOf } from "../tasks/registry.ts";
import { checkGzipFile, gunzipHead } from "./gunzip-input.ts";
import type { LocalPipeline } from "./local-stores.ts";
import { providersFrom } from "./worker-config.ts";

/** Decompressed bytes of a gzip file read to check its header: past any header's limit (1 MiB). */
const GZIP_HEAD_BYTES = 1024 * 1024 + 64 * 1024;

/** A read-only store holding one object: `bytes` (a gzip file's head) or the file's bytes. */
function singleObjectView(
  bucket: string,
  name: string,
  content: { file: string; size: number; etag: string } | { bytes: Buffer; size: number },
): ObjectStore {
  const info: ObjectInfo = {
    name,
    size: content.size,
    etag: "etag" in content ? content.etag : "preflight",
    lastModified: new Date(0),
  };
  const refuse = async (): Promise<never> => {
    throw new Error("the preflight view of a local file is read-only");
  };
  return {
    head: async (b, n) => (b === bucket && n === name ? info : undefined),
    async read(b, n, range?: ByteRange) {
      if (b !== bucket || n !== name) throw new Error(`no object ${b}/${n} in the preflight view`);
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? content.size, content.size);
      if ("bytes" in content) return Readable.from([content.bytes.subarray(start, end)]);
      if (end <= start) return Readable.from([]);
      const handle = await open(content.file, "r");
      return handle.createReadStream({ start, end: end - 1, autoClose: true });
    },
    put: refuse,
    list: async () => ({ objects: [] }),
    delete: refuse,
  };
}

/** The options of `run` the preflight reads. */
export interface PreflightOptions {
  inputFile: string;
  descriptor: string;
  spec?: Omit<Partial<JobSpecInput>, "input" | "model"> & {
    input?: Pick<JobSpecInput["input"], "format" | "delimiter">;
  };
  log: Logger;
}

/**
 * Check a local file's job as the splitter will, before anything is written (see the
 * module comment). Throws the splitter's own errors: a bad option, an unreadable or
 * unfit model, a header without the model's columns (saying when the delimiter is
 * probably wrong), an empty input, a corrupt gzip head.
 */
export async function preflightLocalFile(
  pipeline: LocalPipeline,
  bucket: string,
  options: PreflightOptions,
): Promise<void> {
  const file = path.resolve(options.inputFile);
  const gzip = await checkGzipFile(file);
  // The object name the staged file will have, as far as format hints go.
  const name = gzip ? withoutGzipSuffix(path.basename(file)) : path.basename(file);
  const descriptor = path.resolve(options.descriptor);
  const raw = {
    ...options.spec,
    input: { ...options.spec?.input, bucket, object: name },
    output: { bucket: "output", ...options.spec?.output },
    model: { descriptor },
  };
  resolveJobSpec(raw); // the options first: a bad flag is refused before the model loads
  const model = await pipeline.loadModel(descriptor);
  const task = taskOf(model);
  const spec = resolveJobSpec(raw, task.specDefaults);
  task.checkInput(spec.input.format);
  if (gzip && spec.input.format === "parquet") {
    throw new InvalidArgumentError(
      `input file ${file} is a gzipped Parquet file: Parquet compresses its own pages; decompress it (gunzip -k) and run the .parquet`,
    );
  }
  let view: ObjectStore;
  if (gzip) {
    const head = await gunzipHead(file, GZIP_HEAD_BYTES);
    // A longer stream has records past the head: say so with one more byte than read.
    view = singleObjectView(bucket, name, {
      bytes: head.bytes,
      size: head.bytes.length + (head.complete ? 0 : 1),
    });
  } else {
    const st = await stat(file);
    view = singleObjectView(bucket, name, { file, size: st.size, etag: "preflight" });
  }
  const planned = await sourceModule(spec.input.format).plan(view, spec, task.neededColumns(spec));
  try {
    task.plan(spec, planned);
  } finally {
    await planned.discard().catch(() => undefined);
  }
  // onnxruntime opens the model on the execution providers the workers will use.
  const fallbacks = await checkModelOpens(model, {
    executionProviders: providersFrom(process.env.ORT_EXECUTION_PROVIDERS),
  });
  for (const f of fallbacks) {
    options.log.info(`execution provider ${f.provider} is unavailable here`, { reason: f.reason });
  }
}
