/**
 * Writing a refresh's generation: one merge-join, by document id, of the plan, the
 * previous generation's state and embedding set, and the embedding job's predictions
 * and errors — all sorted by id, so memory stays constant. Out of the same pass come
 * the complete new embedding set (unchanged documents' rows copied byte for byte), the
 * delta (upserts and deletes, to push into a vector index), the new state and the
 * failures. Deterministic: finishing the same refresh twice writes the same bytes.
 *
 * A document that was to be embedded but is in neither the predictions nor the
 * errors (its partition failed) is a failure like a bad record: it goes to
 * failed.jsonl and keeps its previous vector and state (same model) — so the next
 * refresh sees it as changed and embeds it again; it is never silently skipped.
 */
import { PipelineError } from "../core/errors.ts";
import type { JobRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import type { ActiveRefresh, CorpusHead, GenerationRef, RefreshCounts } from "./head.ts";
import type { CorpusLayout } from "./layout.ts";
import {
  deleteLine,
  encodeStateLine,
  type PlanLine,
  parsePlanLine,
  rowHead,
  type StateEntry,
  upsertLine,
} from "./lines.ts";
import { stateEntries } from "./plan.ts";
import { type LineRef, multiPut, objectLines, Peekable, type PutOut } from "./streams.ts";

interface Row {
  line: LineRef;
  id: string;
  chunk: number;
  sha256: string;
}

async function* rowsOf(store: ObjectStore, bucket: string, object: string | undefined) {
  if (!object) return;
  for await (const line of objectLines(store, bucket, object)) {
    yield { line, ...rowHead(line) } as Row;
  }
}

async function* errorsOf(store: ObjectStore, bucket: string, object: string | undefined) {
  if (!object) return;
  for await (const l of objectLines(store, bucket, object)) {
    const e = JSON.parse(l.buf.toString("utf8", l.start, l.end)) as {
      reason?: string;
      key?: { id?: string } | null;
      record?: string | null;
    };
    yield { id: e.key?.id ?? e.record ?? "", reason: e.reason ?? "bad record" };
  }
}

async function* planOf(store: ObjectStore, bucket: string, object: string) {
  for await (const l of objectLines(store, bucket, object)) yield parsePlanLine(l);
}

function inconsistent(detail: string): PipelineError {
  return new PipelineError(
    "INTERNAL",
    `refresh inputs disagree: ${detail}; the plan, the previous generation and the job's outputs must come from one refresh`,
  );
}

/**
 * Write generation `active.generation` from the plan, the previous generation (from
 * `head`) and `job`'s outputs (none when nothing was to be embedded).
 */
export async function writeGeneration(
  store: ObjectStore,
  layout: CorpusLayout,
  head: CorpusHead,
  active: ActiveRefresh,
  job: JobRecord | undefined,
  now: Date,
): Promise<GenerationRef> {
  if (!active.plan || !active.model) throw inconsistent("the refresh has no plan yet");
  const out = layout.generation(active.generation);
  const bucket = layout.bucket;
  const sameModel = head.model?.identity === active.model.identity && head.current !== undefined;
  const previous = sameModel ? head.current : undefined;
  const plan = Peekable.of(planOf(store, bucket, active.plan));
  const prevState = Peekable.of(stateEntries(store, bucket, previous?.state));
  const prevRows = Peekable.of(rowsOf(store, bucket, previous?.embeddings));
  const r = job?.result;
  const preds = Peekable.of(
    rowsOf(
      store,
      r?.output.bucket ?? bucket,
      job?.state === "failed" ? undefined : r?.output.object,
    ),
  );
  const errors = Peekable.of(
    errorsOf(store, r?.errorsOutput.bucket ?? bucket, r?.errorsOutput.object),
  );
  const chunked = job?.outputColumns.includes("chunk") ?? false;
  const unscored =
    job === undefined
      ? "no embedding job ran"
      : job.state === "failed"
        ? `the embedding job ${job.jobId} failed: ${job.error ?? "see its status"}`
        : `its partition of job ${job.jobId} failed (see \`batch-infer status ${job.jobId}\`)`;
  const counts: RefreshCounts = { new: 0, changed: 0, unchanged: 0, deleted: 0, failed: 0 };
  let documents = 0;
  let rows = 0;

  await multiPut(
    store,
    bucket,
    [out.embeddings, out.delta, out.state, out.failed],
    async ([set, delta, state, failed]) => {
      if (!set || !delta || !state || !failed) return;
      const keep = async (id: string, entry: Omit<StateEntry, "offset" | "length">) => {
        const offset = set.bytes;
        await copyPrevious(prevRows, set, id, entry.rows);
        await state.write(encodeStateLine({ ...entry, offset, length: set.bytes - offset }));
        documents++;
        rows += entry.rows;
      };
      for (let p = await plan.next(); p; p = await plan.next()) {
        let prev: StateEntry | undefined;
        if (previous && p.action !== "new") {
          prev = await prevState.next();
          if (prev?.id !== p.id) {
            throw inconsistent(`plan has ${p.id} where the previous state has ${prev?.id}`);
          }
        }
        switch (p.action) {
          case "keep":
          case "touched": {
            if (!prev) throw inconsistent(`plan carries ${p.id} over but it has no previous rows`);
            // The listed etag: a touched document's new etag now stands for the same bytes.
            await keep(p.id, { ...prev, etag: p.etag, size: p.size });
            counts.unchanged++;
            break;
          }
          case "delete": {
            if (prev) await copyPrevious(prevRows, undefined, p.id, prev.rows);
            await delta.write(deleteLine(p.id));
            counts.deleted++;
            break;
          }
          default: {
            const got = await embedded(preds, p, set, delta, chunked);
            if (got) {
              if (prev) await copyPrevious(prevRows, undefined, p.id, prev.rows);
              await state.write(
                encodeStateLine({
                  id: p.id,
                  etag: p.etag,
                  size: p.size,
                  sha256: got.sha256,
                  rows: got.rows,
                  offset: got.offset,
                  length: set.bytes - got.offset,
                }),
              );
              documents++;
              rows += got.rows;
              counts[p.action === "new" ? "new" : "changed"]++;
              break;
            }
            const e = await errors.peek();
            const reason = e?.id === p.id ? ((await errors.next())?.reason ?? unscored) : unscored;
            await failed.write(`${JSON.stringify({ id: p.id, reason, action: p.action })}\n`);
            counts.failed++;
            if (prev) {
              // Same model: the old vector stays until the new one exists (its state keeps
              // the old etag and hash, so the next refresh embeds it again).
              await keep(p.id, prev);
            } else if (p.action === "changed") {
              // The model changed: its old vector is of another model and must go.
              await delta.write(deleteLine(p.id));
            }
          }
        }
      }
      const leftRow = await preds.peek();
      if (leftRow)
        throw inconsistent(
          `the job's predictions hold ${leftRow.id}, which the plan does not embed`,
        );
      const leftError = await errors.peek();
      if (leftError)
        throw inconsistent(`the job's errors hold ${leftError.id}, which the plan does not embed`);
    },
  );
  const ref: GenerationRef = {
    generation: active.generation,
    embeddings: out.embeddings,
    delta: out.delta,
    state: out.state,
    failed: out.failed,
    summary: out.summary,
    documents,
    rows,
    counts,
    ...(job ? { jobId: job.jobId } : {}),
    completedAt: now.toISOString(),
    eventPublished: false,
  };
  await store.put(
    bucket,
    out.summary,
    `${JSON.stringify(
      {
        corpus: head.corpus,
        generation: active.generation,
        previousGeneration: head.current?.generation ?? 0,
        model: active.model,
        modelChanged: head.model !== undefined && !sameModel,
        startedAt: active.startedAt,
        completedAt: ref.completedAt,
        jobId: job?.jobId,
        counts,
        touched: active.planned?.touched ?? 0,
        documents,
        rows,
        objects: { ...out, bucket },
      },
      null,
      2,
    )}\n`,
    { contentType: "application/json" },
  );
  return ref;
}

/** Move `rows` rows of document `id` from the previous set into `to` (or past them). */
async function copyPrevious(
  prev: Peekable<Row>,
  to: PutOut | undefined,
  id: string,
  rows: number,
): Promise<void> {
  for (let i = 0; i < rows; i++) {
    const row = await prev.next();
    if (row?.id !== id) {
      throw inconsistent(`the previous embedding set has ${row?.id} where its state has ${id}`);
    }
    if (to) await to.writeLine(row.line.buf, row.line.start, row.line.end);
  }
}

/** Take document `p`'s rows from the predictions into the set and the delta (undefined: none). */
async function embedded(
  preds: Peekable<Row>,
  p: PlanLine,
  set: PutOut,
  delta: PutOut,
  chunked: boolean,
): Promise<{ rows: number; sha256: string; offset: number } | undefined> {
  const offset = set.bytes;
  let n = 0;
  let sha256 = "";
  for (let row = await preds.peek(); row && row.id === p.id; row = await preds.peek()) {
    await preds.next();
    if (row.chunk !== n) throw inconsistent(`${p.id} has chunk ${row.chunk} where ${n} was due`);
    if (n === 0) sha256 = row.sha256;
    await set.writeLine(row.line.buf, row.line.start, row.line.end);
    await delta.write(upsertLine(row.line));
    n++;
  }
  if (n === 0) return undefined;
  // Fewer chunks than before: the ones past the end go.
  if (chunked) for (let c = n; c < p.previousRows; c++) await delta.write(deleteLine(p.id, c));
  return { rows: n, sha256, offset };
}
