import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { InferenceError } from "../src/core/errors.ts";
import { readOwnedLines } from "../src/records/line-reader.ts";
import type { LineBlock, ObjectBlock, RecordBlock } from "../src/sources/record-source.ts";
import { planBatches } from "../src/tasks/text-embedding/batcher.ts";
import {
  cosine,
  documentsBlock,
  EmbeddingRowCollector,
  nearestNeighbours,
} from "../src/tasks/text-embedding/collect-rows.ts";
import { TextEmbeddingDecoder, textOutputColumns } from "../src/tasks/text-embedding/decoder.ts";
import { embedInProcess } from "../src/tasks/text-embedding/embed-in-process.ts";
import { TextEmbeddingEncoder } from "../src/tasks/text-embedding/encoder.ts";
import { createFeedsScorer, type FeedsScorer } from "../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel, type TextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { generateCorpus } from "../src/tasks/text-embedding/model-gen/corpus.ts";
import { writeTextModel } from "../src/tasks/text-embedding/model-gen/generate.ts";
import { type TextRecord, TextRecordReader } from "../src/tasks/text-embedding/text-records.ts";

let root: string;
let wp: string;
let sentence: string;
let model: TextModel;
let scorer: FeedsScorer;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "text-task-"));
  wp = path.join(root, "wordpiece");
  sentence = path.join(root, "sentence");
  await writeTextModel(wp);
  await writeTextModel(sentence, { output: "sentence_embedding" });
  model = await loadTextModel({ dir: wp, task: { kind: "text-embedding" } });
  scorer = await createFeedsScorer(model.onnxBytes, { where: model.onnxPath });
});
after(async () => {
  await scorer?.close();
  await rm(root, { recursive: true, force: true });
});

async function linesOf(text: string, format: "jsonl" | "csv", dataStart = 0): Promise<LineBlock[]> {
  const buf = Buffer.from(text);
  const blocks: LineBlock[] = [];
  const options = {
    from: dataStart,
    fromIsRecordStart: true,
    end: buf.length,
    maxLineBytes: 1 << 20,
  };
  for await (const lines of readOwnedLines(Readable.from([buf.subarray(dataStart)]), options)) {
    blocks.push({ kind: "lines", format, lines });
  }
  return blocks;
}

function reasonOf(r: TextRecord): string {
  return "reason" in r ? r.reason : "accepted";
}

async function embed(m: TextModel, blocks: RecordBlock[], s = scorer, csv?: { columns: string[] }) {
  const sink = new EmbeddingRowCollector();
  const bad: string[] = [];
  const stats = await embedInProcess(m, s, blocks, sink, {
    ...(csv ? { csv } : {}),
    onBadRecord: (_b, i, reason) => bad.push(`${i}: ${reason}`),
  });
  return { rows: sink.rows, bad, stats };
}

describe("text records", () => {
  const source = { fields: ["text"], parts: [{ field: "text" }], missingFields: "error" as const };

  it("gives every bad JSON line a reason", async () => {
    const reader = new TextRecordReader("id", source);
    const lines = [
      `{"id":"a","text":"fine"}`,
      `{"text":"no id"}`,
      `{"id":"","text":"empty id"}`,
      `{"id":"b"}`,
      `{"id":"c","text":"   "}`,
      `{"id":"d","text":42}`,
      `{"id":12345678901234567890,"text":"big id"}`,
      `{"id":7,"text":"numeric id"}`,
      `{"id":"e","text":"bad \\ud800 surrogate"}`,
      `not json`,
      `[1,2]`,
    ];
    const [block] = await linesOf(`${lines.join("\n")}\n`, "jsonl");
    assert.ok(block);
    const got = lines.map((_, i) => reader.read(block, i));
    assert.deepEqual(got[0], { id: "a", text: "fine" });
    assert.deepEqual(got[7], { id: "7", text: "numeric id" });
    const reasons = got.map(reasonOf);
    assert.deepEqual(reasons.slice(1, 7), [
      'missing id field "id"',
      'empty id field "id"',
      'missing text field "text"',
      "empty text",
      'text field "text" is a number, not a string',
      'id field "id" is an integer beyond 2^53: write it as a string',
    ]);
    assert.match(reasons[8] ?? "", /unpaired surrogate/);
    assert.match(reasons[9] ?? "", /invalid JSON/);
    assert.match(reasons[10] ?? "", /not an object/);
    const invalid = Buffer.concat([
      Buffer.from('{"id":"x","text":"'),
      Buffer.from([0xff]),
      Buffer.from('"}\n'),
    ]);
    const [bad] = await linesOf(invalid.toString("latin1"), "jsonl");
    assert.ok(bad);
    bad.lines.buf = invalid;
    assert.match(reasonOf(reader.read(bad, 0)), /UTF-8/);
  });

  it("joins several fields with a template; a missing field is an error or empty, as configured", () => {
    const parts = [{ field: "title" }, { literal: "\n\n" }, { field: "body" }];
    const strict = new TextRecordReader("id", {
      fields: ["title", "body"],
      parts,
      missingFields: "error",
    });
    const lenient = new TextRecordReader("id", {
      fields: ["title", "body"],
      parts,
      missingFields: "empty",
    });
    const block = documentsBlock([
      { id: "1", title: "Moon", body: "Craters." },
      { id: "2", body: "No title." },
      { id: "3", title: "Nested", body: { x: 1 } },
    ]);
    assert.deepEqual(strict.read(block, 0), { id: "1", text: "Moon\n\nCraters." });
    assert.deepEqual(strict.read(block, 1), {
      id: "2",
      reason: 'missing field "title" (named by the text template)',
    });
    assert.deepEqual(lenient.read(block, 1), { id: "2", text: "\n\nNo title." });
    assert.match(reasonOf(strict.read(block, 2)), /is a object, not text/);
  });

  it("reads CSV rows by header, with quoted fields, and checks the header up front", async () => {
    const csv = { columns: ["doc", "body", "extra"] };
    const reader = new TextRecordReader(
      "doc",
      { fields: ["body"], parts: [{ field: "body" }], missingFields: "error" },
      csv,
    );
    const [block] = await linesOf(`d1,"Stars, moons and ""planets""",x\nd2,only two\n`, "csv");
    assert.ok(block);
    assert.deepEqual(reader.read(block, 0), { id: "d1", text: 'Stars, moons and "planets"' });
    assert.deepEqual(reader.read(block, 1), { reason: "2 fields where the header has 3" });
    assert.throws(
      () =>
        new TextRecordReader(
          "id",
          { fields: ["body"], parts: [{ field: "body" }], missingFields: "error" },
          csv,
        ),
      /the CSV input has no column "id"/,
    );
  });

  it("names a bad record by its id when it has one (for the errors output)", () => {
    const encoder = new TextEmbeddingEncoder(model);
    const block = documentsBlock([{ id: "k", text: " " }, { text: "no id" }]);
    assert.equal(encoder.add(block, 0), "empty text");
    assert.deepEqual(encoder.keyOf(block, 0), { id: "k" });
    assert.equal(encoder.add(block, 1), 'missing id field "id"');
    assert.equal(encoder.keyOf(block, 1), undefined);
    assert.deepEqual(encoder.take(true), []);
    assert.equal(encoder.stats.badRecords, 2);
  });

  it("takes one object as one document, named by its object name", () => {
    const reader = new TextRecordReader("id", source);
    const block: ObjectBlock = {
      kind: "objects",
      count: 4,
      names: ["docs/a.txt", "docs/b.txt", "docs/c.txt", "docs/d.txt"],
      bodies: [Buffer.from("\ufeffThe comet."), Buffer.from([0xc3]), undefined, Buffer.from(" \n")],
      problems: [undefined, undefined, "object vanished (404)", undefined],
      positions: Float64Array.of(0, 1, 2, 3),
      nextPositions: Float64Array.of(1, 2, 3, 4),
    };
    assert.deepEqual(reader.read(block, 0), { id: "docs/a.txt", text: "The comet." });
    assert.deepEqual(reader.read(block, 1), {
      id: "docs/b.txt",
      reason: "invalid UTF-8 in object",
    });
    assert.deepEqual(reader.read(block, 2), { id: "docs/c.txt", reason: "object vanished (404)" });
    assert.deepEqual(reader.read(block, 3), { id: "docs/d.txt", reason: "empty text" });
  });
});

describe("batching", () => {
  const spec = {
    inputs: {
      inputIds: "input_ids",
      attentionMask: "attention_mask",
      tokenTypeIds: "token_type_ids",
      type: "int64" as const,
    },
    padId: 0,
    typeIdsOf: (n: number) => new Int32Array(n),
  };
  const seqs = (lengths: number[]) =>
    lengths.map((n, k) => Int32Array.from({ length: n }, (_, t) => 1000 * k + t + 1));

  it("sorts by length, keeps every batch within the token budget, and runs an over-budget text alone", () => {
    const lengths = [5, 300, 12, 7, 40, 41, 3, 2000, 9, 10, 11, 39];
    const plan = planBatches(
      seqs(lengths),
      { tokenBudget: 128, attentionBudget: 1e12, maxPadding: 1 },
      spec,
    );
    const seen = new Set<string>();
    plan.batches.forEach((b, bi) => {
      const [rows, cols] = b.feeds.input_ids?.dims ?? [];
      assert.equal(rows, b.rows);
      if ((rows as number) > 1)
        assert.ok((rows as number) * (cols as number) <= 128, `batch ${bi}`);
    });
    lengths.forEach((n, s) => {
      const b = plan.batches[plan.seqBatch[s] as number];
      const row = plan.seqRow[s] as number;
      const [, cols] = b?.feeds.input_ids?.dims ?? [];
      const ids = b?.feeds.input_ids?.data as BigInt64Array;
      const mask = b?.feeds.attention_mask?.data as BigInt64Array;
      assert.equal(
        ids[row * (cols as number)],
        BigInt(1000 * s + 1),
        `sequence ${s} is where the plan says`,
      );
      let real = 0;
      for (let t = 0; t < (cols as number); t++) real += Number(mask[row * (cols as number) + t]);
      assert.equal(real, n);
      seen.add(`${plan.seqBatch[s]}:${row}`);
    });
    assert.equal(seen.size, lengths.length);
    const alone = plan.batches[plan.seqBatch[7] as number];
    assert.equal(alone?.rows, 1, "the 2000-token text runs alone");
    const unsortedPadding = Math.max(...lengths) * lengths.length;
    assert.ok(plan.paddedTokens < unsortedPadding / 3);
  });

  it("caps a batch's padding once it holds more than a few hundred tokens", () => {
    const lengths = [200, 190, 180, 100, 90, 20, 19, 18, 17, 3];
    const plan = planBatches(
      seqs(lengths),
      { tokenBudget: 16384, attentionBudget: 1e12, maxPadding: 0.1 },
      spec,
    );
    for (const b of plan.batches) {
      const [rows, cols] = (b.feeds.input_ids?.dims ?? [0, 0]) as [number, number];
      const mask = b.feeds.attention_mask?.data as BigInt64Array;
      const real = mask.reduce((n, x) => n + Number(x), 0);
      if (rows * cols > 256)
        assert.ok((rows * cols - real) / (rows * cols) <= 0.1, `${rows}×${cols}`);
    }
    assert.deepEqual(
      plan.batches.map((b) => b.rows),
      [3, 2, 5],
    );
  });

  it("bounds rows × longest² by the attention budget", () => {
    const plan = planBatches(
      seqs(Array(16).fill(100)),
      { tokenBudget: 1e9, attentionBudget: 4 * 100 * 100, maxPadding: 0 },
      spec,
    );
    assert.deepEqual(
      plan.batches.map((b) => b.rows),
      [4, 4, 4, 4],
    );
  });
});

describe("text encoder and decoder on onnxruntime", () => {
  const docs = generateCorpus(60, 11);

  it("writes one row per document in input order, whatever the batching", async () => {
    const block = documentsBlock(docs);
    const big = await embed(model, [block]);
    const tinyModel = {
      ...model,
      batching: {
        tokenBudget: 64,
        attentionBudget: 1e9,
        maxPadding: 0.1,
        windowTokens: 300,
        windowRecords: 7,
      },
    };
    const tiny = await embed(tinyModel, [block]);
    assert.deepEqual(
      big.rows.map((r) => r.id),
      docs.map((d) => d.id),
    );
    assert.deepEqual(
      tiny.rows.map((r) => r.id),
      docs.map((d) => d.id),
    );
    for (let i = 0; i < docs.length; i++) {
      const c = cosine(big.rows[i]?.vector as Float32Array, tiny.rows[i]?.vector as Float32Array);
      assert.ok(c > 0.99999, `${docs[i]?.id}: cos ${c}`);
    }
    assert.ok(tiny.stats.paddedTokens >= tiny.stats.tokens);
    assert.equal(big.stats.records, docs.length);
    for (const r of big.rows) {
      assert.equal(r.vector.length, 128);
      let n = 0;
      for (const x of r.vector) n += x * x;
      assert.ok(Math.abs(Math.sqrt(n) - 1) < 1e-5, "normalised");
    }
  });

  it("agrees with a model that pools and normalises inside its graph (sentence_embedding)", async () => {
    const s = await loadTextModel({ dir: sentence, task: { kind: "text-embedding" } });
    const sScorer = await createFeedsScorer(s.onnxBytes, { thread: false });
    try {
      const ours = await embed(model, [documentsBlock(docs)]);
      const theirs = await embed(s, [documentsBlock(docs)], sScorer);
      ours.rows.forEach((r, i) => {
        const c = cosine(r.vector, theirs.rows[i]?.vector as Float32Array);
        assert.ok(c > 0.9999, `${r.id}: cos ${c}`);
      });
    } finally {
      await sScorer.close();
    }
  });

  it("pools the first token with cls, and leaves vectors unnormalised when asked", async () => {
    const cls = await loadTextModel({
      dir: wp,
      task: { kind: "text-embedding", pooling: "cls", normalize: false },
    });
    const mean = await loadTextModel({
      dir: wp,
      task: { kind: "text-embedding", normalize: false },
    });
    const two = documentsBlock(docs.slice(0, 2));
    const a = await embed(cls, [two]);
    const b = await embed(mean, [two]);
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm(b.rows[0]?.vector as Float32Array) - 1) > 0.01);
    assert.ok(cosine(a.rows[0]?.vector as Float32Array, b.rows[0]?.vector as Float32Array) < 0.999);
    // [CLS] of a one-token text pooled by mean is the mean of [CLS], t, [SEP]: not the same.
    assert.equal(a.rows.length, 2);
  });

  it("chunks long documents with overlap and numbers the chunks", async () => {
    const chunked = await loadTextModel({
      dir: wp,
      task: { kind: "text-embedding", maxLength: 32, chunking: { overlap: 8 } },
    });
    assert.deepEqual(
      textOutputColumns(chunked).map((c) => c.name),
      ["id", "chunk", "embedding"],
    );
    const sample = docs.slice(0, 10);
    const { rows, stats } = await embed(chunked, [documentsBlock(sample)]);
    for (const d of sample) {
      const mine = rows.filter((r) => r.id === d.id);
      const content = chunked.tokenizer.encode(d.text).length;
      const expected = content <= 30 ? 1 : Math.ceil((content - 30) / 22) + 1;
      assert.equal(mine.length, expected, `${d.id}: ${content} tokens`);
      assert.deepEqual(
        mine.map((r) => r.chunk),
        mine.map((_, k) => k),
      );
    }
    assert.equal(stats.sequences, rows.length);
    assert.equal(stats.truncated, 0);
  });

  it("truncates long texts to maxLength and counts them", async () => {
    const short = await loadTextModel({ dir: wp, task: { kind: "text-embedding", maxLength: 16 } });
    const { rows, stats } = await embed(short, [documentsBlock(docs.slice(0, 20))]);
    assert.equal(rows.length, 20);
    const long = docs.slice(0, 20).filter((d) => short.tokenizer.encode(d.text).length > 14).length;
    assert.equal(stats.truncated, long);
    assert.ok(stats.tokens <= 16 * 20);
  });

  it("cuts a huge text by characters first without changing its (truncated) vector", async () => {
    const huge = `${docs.map((d) => d.text).join(" ")} `.repeat(4);
    assert.ok(huge.length > 100_000);
    const cut = await loadTextModel({ dir: wp, task: { kind: "text-embedding", maxLength: 64 } });
    const whole = await loadTextModel({
      dir: wp,
      task: { kind: "text-embedding", maxLength: 64, maxChars: 10_000_000 },
    });
    assert.equal(cut.settings.maxChars, 64 * 32);
    const block = documentsBlock([{ id: "huge", text: huge }]);
    const a = await embed(cut, [block]);
    const b = await embed(whole, [block]);
    assert.equal(a.stats.tokens, 64);
    assert.ok(
      cosine(a.rows[0]?.vector as Float32Array, b.rows[0]?.vector as Float32Array) > 0.999999,
    );
  });

  it("embeds JSON Lines and CSV inputs; bad records get reasons, the rest still come out in order", async () => {
    const jsonl = [
      JSON.stringify({ id: "x1", text: "The telescope found a comet." }),
      JSON.stringify({ id: "x2" }),
      JSON.stringify({ id: "x3", text: "Bake the bread in the oven." }),
      "{broken",
      JSON.stringify({ id: "x4", text: "" }),
      JSON.stringify({ id: "x5", text: "The striker scored a goal." }),
    ].join("\n");
    const j = await embed(model, await linesOf(jsonl, "jsonl"));
    assert.deepEqual(
      j.rows.map((r) => r.id),
      ["x1", "x3", "x5"],
    );
    assert.deepEqual(
      j.bad.map((b) => b.split(":")[0]),
      ["1", "3", "4"],
    );
    const csvText = `id,text\nc1,"A comet, a planet"\nc2,\nc3,Bake bread\n`;
    const c = await embed(model, await linesOf(csvText, "csv", 8), scorer, {
      columns: ["id", "text"],
    });
    assert.deepEqual(
      c.rows.map((r) => r.id),
      ["c1", "c3"],
    );
    assert.deepEqual(c.bad, ["1: empty text"]);
    const same = cosine(j.rows[0]?.vector as Float32Array, c.rows[0]?.vector as Float32Array);
    assert.ok(same < 0.9999, "different texts, different vectors");
  });

  it("puts documents next to others of their topic (the generated model means something)", async () => {
    const corpus = generateCorpus(160, 21);
    const { rows } = await embed(model, [documentsBlock(corpus)]);
    let hits = 0;
    rows.forEach((_, i) => {
      const [nearest] = nearestNeighbours(rows, i, 1);
      if (corpus[nearest?.index ?? -1]?.topic === corpus[i]?.topic) hits++;
    });
    // 8 topics: chance is 1/8.
    assert.ok(
      hits / rows.length >= 0.8,
      `nearest neighbour shares the topic for ${hits}/${rows.length}`,
    );
  });

  it("passes a failed model call on to the caller instead of hanging", async () => {
    const failing: FeedsScorer = {
      inputNames: [],
      outputNames: [],
      run: async () => {
        throw new InferenceError("out of memory");
      },
      close: async () => {},
    };
    await assert.rejects(embed(model, [documentsBlock(docs)], failing), /out of memory/);
  });

  it("the decoder refuses outputs that don't match the model", () => {
    const decoder = new TextEmbeddingDecoder(model);
    const encoder = new TextEmbeddingEncoder(model);
    assert.equal(encoder.add(documentsBlock([{ id: "a", text: "moon" }]), 0), undefined);
    const [window] = encoder.take(true);
    assert.ok(window);
    const wrong = {
      last_hidden_state: {
        type: "float32" as const,
        data: new Float32Array(3 * 64),
        dims: [1, 3, 64],
      },
    };
    assert.throws(
      () => decoder.write(window, [wrong], new EmbeddingRowCollector()),
      /expected \[1, seq, 128\]/,
    );
  });
});
