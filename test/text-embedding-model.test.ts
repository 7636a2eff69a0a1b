import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ModelError, ValidationError } from "../src/core/errors.ts";
import { encodeOnnxModel } from "../src/model/onnx-writer.ts";
import { loadTextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { generateCorpus } from "../src/tasks/text-embedding/model-gen/corpus.ts";
import { writeTextModel } from "../src/tasks/text-embedding/model-gen/generate.ts";
import { COMMON_WORDS, TOPIC_WORDS } from "../src/tasks/text-embedding/model-gen/word-lists.ts";
import { readOnnxSignature } from "../src/tasks/text-embedding/onnx-signature.ts";
import { toSequences } from "../src/tasks/text-embedding/sequences.ts";
import { parseTemplate, parseTextTask } from "../src/tasks/text-embedding/task-config.ts";
import { hasLoneSurrogate, truncateChars } from "../src/tasks/text-embedding/tokenizer.ts";

let root: string;
let wp: string;
let bpe: string;
let sentence: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "text-model-"));
  wp = path.join(root, "wordpiece");
  bpe = path.join(root, "bpe");
  sentence = path.join(root, "sentence");
  await writeTextModel(wp, { tokenizer: "wordpiece" });
  await writeTextModel(bpe, { tokenizer: "bpe" });
  await writeTextModel(sentence, { tokenizer: "wordpiece", output: "sentence_embedding" });
});
after(() => rm(root, { recursive: true, force: true }));

const task = (extra: Record<string, unknown> = {}) => ({ kind: "text-embedding", ...extra });

describe("generated text model", () => {
  it("is deterministic: the same seed writes the same bytes, another seed other weights", async () => {
    const again = path.join(root, "again");
    const other = path.join(root, "other");
    await writeTextModel(again, { tokenizer: "wordpiece" });
    await writeTextModel(other, { tokenizer: "wordpiece", seed: 99 });
    const onnx = (d: string) => readFile(path.join(d, "onnx", "model.onnx"));
    assert.deepEqual(await onnx(again), await onnx(wp));
    assert.deepEqual(
      await readFile(path.join(again, "tokenizer.json")),
      await readFile(path.join(wp, "tokenizer.json")),
    );
    assert.notDeepEqual(await onnx(other), await onnx(wp));
  });

  it("has topic words that belong to one topic each and are not common words", () => {
    const seen = new Map<string, string>();
    const common = new Set(COMMON_WORDS);
    for (const [topic, words] of Object.entries(TOPIC_WORDS)) {
      for (const w of words) {
        assert.equal(seen.get(w), undefined, `${w} is in ${seen.get(w)} and ${topic}`);
        assert.ok(!common.has(w), `${w} is a common word too`);
        seen.set(w, topic);
      }
    }
  });

  it("declares the export layout's inputs and outputs (read from the ONNX bytes)", async () => {
    const sig = (d: string) =>
      readFile(path.join(d, "onnx", "model.onnx")).then((b) => readOnnxSignature(b, d));
    const w = await sig(wp);
    assert.deepEqual(
      w.inputs.map((i) => [i.name, i.type, i.dims]),
      [
        ["input_ids", "int64", ["batch_size", "sequence_length"]],
        ["attention_mask", "int64", ["batch_size", "sequence_length"]],
        ["token_type_ids", "int64", ["batch_size", "sequence_length"]],
      ],
    );
    assert.deepEqual(
      w.outputs.map((o) => [o.name, o.type, o.dims]),
      [["last_hidden_state", "float32", ["batch_size", "sequence_length", 128]]],
    );
    assert.deepEqual(
      (await sig(bpe)).inputs.map((i) => i.name),
      ["input_ids", "attention_mask"],
    );
    assert.deepEqual(
      (await sig(sentence)).outputs.map((o) => [o.name, o.dims]),
      [["sentence_embedding", ["batch_size", 128]]],
    );
    assert.throws(() => readOnnxSignature(Buffer.from("not a model at all"), "x"), ModelError);
  });

  it("writes config.json, tokenizer_config.json and a descriptor beside the model", async () => {
    const config = JSON.parse(await readFile(path.join(wp, "config.json"), "utf8"));
    assert.equal(config.model_type, "bert");
    assert.equal(config.hidden_size, 128);
    const tc = JSON.parse(await readFile(path.join(bpe, "tokenizer_config.json"), "utf8"));
    assert.equal(tc.tokenizer_class, "RobertaTokenizer");
    const model = await loadTextModel({ descriptorPath: path.join(wp, "descriptor.json") });
    assert.equal(model.settings.pooling, "mean");
    assert.equal(model.dimension, 128);
  });

  it("generates documents of every length class, each about one topic", () => {
    const docs = generateCorpus(300, 5);
    const classes = new Set(docs.map((d) => d.length));
    assert.deepEqual([...classes].sort(), ["long", "paragraph", "short", "title"]);
    assert.deepEqual(generateCorpus(3, 5), docs.slice(0, 3));
    const long = docs.find((d) => d.length === "long");
    assert.ok(long?.text.includes("\n\n"));
  });
});

describe("text model directory", () => {
  it("detects inputs and output for WordPiece, BPE and sentence_embedding models", async () => {
    const w = await loadTextModel({ dir: wp, task: task() });
    assert.deepEqual(w.inputs, {
      inputIds: "input_ids",
      attentionMask: "attention_mask",
      tokenTypeIds: "token_type_ids",
      type: "int64",
    });
    assert.deepEqual(w.output, { name: "last_hidden_state", perToken: true });
    assert.equal(w.settings.maxLength, 512);
    assert.equal(w.settings.maxChars, 32 * 512);
    const b = await loadTextModel({ dir: bpe, task: task() });
    assert.equal(b.inputs.tokenTypeIds, undefined);
    const s = await loadTextModel({ dir: sentence, task: task() });
    assert.deepEqual(s.output, { name: "sentence_embedding", perToken: false });
    assert.equal(s.settings.pooling, "none");
  });

  it("finds model.onnx at the top of the directory too", async () => {
    const flat = path.join(root, "flat");
    await writeTextModel(flat, { layout: "flat" });
    const m = await loadTextModel({ dir: flat, task: task() });
    assert.equal(m.onnxPath, path.join(flat, "model.onnx"));
  });

  it("refuses what it can't use, saying what to fix", async () => {
    const broken = path.join(root, "broken");
    await cp(wp, broken, { recursive: true });
    await rm(path.join(broken, "tokenizer.json"));
    await assert.rejects(loadTextModel({ dir: broken, task: task() }), /tokenizer/);
    await assert.rejects(
      loadTextModel({ dir: root, task: task() }),
      /model\.onnx or onnx\/model\.onnx/,
    );
    await assert.rejects(
      loadTextModel({ dir: sentence, task: task({ pooling: "mean" }) }),
      /already one vector per text/,
    );
    await assert.rejects(
      loadTextModel({ dir: wp, task: task({ pooling: "none" }) }),
      /mean" or "cls/,
    );
    await assert.rejects(
      loadTextModel({ dir: wp, task: task({ output: "logits" }) }),
      /not an output/,
    );
    await assert.rejects(
      loadTextModel({ dir: wp, task: task({ maxLength: 1024 }) }),
      /max_position_embeddings 512/,
    );
    await assert.rejects(
      loadTextModel({ dir: wp, task: task({ maxLength: 16, chunking: { overlap: 14 } }) }),
      /overlap 14 must be less than the 14 text tokens/,
    );
    await assert.rejects(
      loadTextModel({ dir: wp, task: task({ pooling: "max" }) }),
      ValidationError,
    );
  });

  it("refuses a graph with an input it can't feed", async () => {
    const odd = path.join(root, "odd");
    await cp(wp, odd, { recursive: true });
    const onnx = encodeOnnxModel({
      name: "odd",
      inputs: [
        { name: "input_ids", dims: ["b", "s"], type: "int64" },
        { name: "attention_mask", dims: ["b", "s"], type: "int64" },
        { name: "position_ids", dims: ["b", "s"], type: "int64" },
      ],
      outputs: [{ name: "last_hidden_state", dims: ["b", "s", 1] }],
      initializers: [],
      nodes: [
        {
          opType: "Cast",
          inputs: ["input_ids"],
          outputs: ["last_hidden_state"],
          attributes: { to: { i: 1 } },
        },
      ],
    });
    await writeFile(path.join(odd, "onnx", "model.onnx"), onnx);
    await assert.rejects(
      loadTextModel({ dir: odd, task: task() }),
      /"position_ids"\] that text embedding does not feed/,
    );
  });

  it("has an identity that changes with everything that changes a vector, and nothing else", async () => {
    const id = async (t: Record<string, unknown>, dir = wp) =>
      (await loadTextModel({ dir, task: task(t) })).embeddingIdentity;
    const base = await id({});
    assert.equal(await id({}), base, "stable across loads");
    assert.equal(
      await id({ normalize: true, pooling: "mean", maxLength: 512 }),
      base,
      "explicit defaults",
    );
    assert.equal(await id({ idField: "doc_id" }), base, "the id field doesn't change vectors");
    assert.equal(await id({ batching: { tokenBudget: 1024 } }), base, "batching doesn't either");
    const changed = [
      await id({ normalize: false }),
      await id({ pooling: "cls" }),
      await id({ maxLength: 128 }),
      await id({ maxChars: 1000 }),
      await id({ chunking: { overlap: 16 } }),
      await id({ text: { template: "{title}. {text}" } }),
    ];
    for (const c of changed) assert.notEqual(c, base);
    assert.equal(new Set(changed).size, changed.length);
    const retok = path.join(root, "retok");
    await cp(wp, retok, { recursive: true });
    const tc = JSON.parse(await readFile(path.join(retok, "tokenizer.json"), "utf8"));
    tc.normalizer.lowercase = false;
    await writeFile(path.join(retok, "tokenizer.json"), JSON.stringify(tc));
    assert.notEqual(await id({}, retok), base, "a tokenizer change is a model change");
  });
});

describe("tokenizer", () => {
  it("lowercases and strips accents (WordPiece), and puts [CLS] … [SEP] around a text", async () => {
    const { tokenizer: tok } = await loadTextModel({ dir: wp, task: task() });
    const vocab = JSON.parse(await readFile(path.join(wp, "tokenizer.json"), "utf8")).model.vocab;
    assert.deepEqual(tok.prefix, [vocab["[CLS]"]]);
    assert.deepEqual(tok.suffix, [vocab["[SEP]"]]);
    assert.deepEqual(tok.encode("Café PLANET"), tok.encode("cafe planet"));
    assert.deepEqual(tok.encode("planet"), [vocab.planet]);
    assert.deepEqual(tok.encode("planets"), [vocab.planet, vocab["##s"]]);
    assert.deepEqual(tok.encode("星 🚀"), [vocab.星, vocab["[UNK]"]]);
    assert.equal(tok.padId, vocab["[PAD]"]);
  });

  it("uses the BPE tokenizer's own specials (<s> … </s>)", async () => {
    const { tokenizer: tok } = await loadTextModel({ dir: bpe, task: task() });
    const vocab = JSON.parse(await readFile(path.join(bpe, "tokenizer.json"), "utf8")).model.vocab;
    assert.deepEqual([tok.prefix, tok.suffix], [[vocab["<s>"]], [vocab["</s>"]]]);
    assert.equal(tok.padId, vocab["<pad>"]);
    assert.ok(tok.encode(" the planet").length <= 2);
  });

  it("cuts long texts by characters at a word boundary, never inside a surrogate pair", () => {
    assert.equal(truncateChars("short", 10), "short");
    assert.equal(truncateChars("alpha beta gamma", 13), "alpha beta");
    assert.equal(truncateChars(`${"x".repeat(200)}`, 100).length, 100);
    const emoji = `${"y".repeat(99)}😀z`;
    assert.equal(truncateChars(emoji, 100), "y".repeat(99));
    assert.ok(hasLoneSurrogate("a\ud800b"));
    assert.ok(!hasLoneSurrogate("a😀b"));
  });
});

describe("sequences (Hugging Face tokenizers convention)", () => {
  const tok = { prefix: [101], suffix: [102] };
  const content = Array.from({ length: 20 }, (_, i) => i + 1);

  it("keeps the special tokens within maxLength when truncating", () => {
    const { sequences, truncated } = toSequences(tok, content, 8);
    assert.ok(truncated);
    assert.deepEqual([...(sequences[0] ?? [])], [101, 1, 2, 3, 4, 5, 6, 102]);
    const short = toSequences(tok, content.slice(0, 3), 8);
    assert.deepEqual([...(short.sequences[0] ?? [])], [101, 1, 2, 3, 102]);
    assert.ok(!short.truncated);
    assert.deepEqual([...(toSequences(tok, [], 8).sequences[0] ?? [])], [101, 102]);
  });

  it("chunks with overlap: every token covered, consecutive chunks share `overlap` tokens", () => {
    const { sequences } = toSequences(tok, content, 8, 2);
    const bodies = sequences.map((s) => [...s.subarray(1, s.length - 1)]);
    assert.deepEqual(bodies, [
      [1, 2, 3, 4, 5, 6],
      [5, 6, 7, 8, 9, 10],
      [9, 10, 11, 12, 13, 14],
      [13, 14, 15, 16, 17, 18],
      [17, 18, 19, 20],
    ]);
    for (const s of sequences) assert.deepEqual([s[0], s[s.length - 1]], [101, 102]);
    assert.equal(toSequences(tok, content.slice(0, 6), 8, 2).sequences.length, 1);
  });
});

describe("task block", () => {
  it("parses templates with literal braces, and refuses broken ones", () => {
    assert.deepEqual(parseTemplate("{title}\n\n{body}"), [
      { field: "title" },
      { literal: "\n\n" },
      { field: "body" },
    ]);
    assert.deepEqual(parseTemplate("{{x}} {y}"), [{ literal: "{x} " }, { field: "y" }]);
    assert.throws(() => parseTemplate("{open"), /unclosed or empty placeholder/);
    assert.throws(() => parseTemplate("a } b"), /lone }/);
  });

  it("fills defaults and names the failing path", () => {
    const t = parseTextTask({ kind: "text-embedding" });
    assert.deepEqual(
      [t.modelDir, t.idField, t.text, t.normalize],
      [".", "id", { field: "text" }, true],
    );
    assert.throws(
      () => parseTextTask({ kind: "text-embedding", pool: "mean" }),
      /unknown field "pool"/,
    );
    assert.throws(
      () => parseTextTask({ kind: "text-embedding", maxLength: 8, chunking: { overlap: 8 } }),
      /overlap 8 must be less than maxLength 8/,
    );
    assert.throws(() => parseTextTask({ kind: "image" }), ValidationError);
  });
});
