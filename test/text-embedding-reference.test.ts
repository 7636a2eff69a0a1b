/**
 * Our vectors against an independent computation over the same model directory: the
 * @huggingface/transformers `feature-extraction` pipeline (its own tokenizer run, its
 * own onnxruntime session, its own pooling), loaded from local files only.
 *
 * Truncated texts are compared against a reference built here instead: transformers.js
 * truncates after adding the special tokens, so a cut text loses its final [SEP]
 * (`[CLS] t1 … t(n-1)`), while the Hugging Face tokenizers convention that
 * sentence-transformers follows keeps it (`[CLS] t1 … t(n-2) [SEP]`).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { AutoModel, AutoTokenizer, env, pipeline, Tensor } from "@huggingface/transformers";
import {
  cosine,
  documentsBlock,
  EmbeddingRowCollector,
} from "../src/tasks/text-embedding/collect-rows.ts";
import { embedInProcess } from "../src/tasks/text-embedding/embed-in-process.ts";
import { createFeedsScorer } from "../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { generateCorpus } from "../src/tasks/text-embedding/model-gen/corpus.ts";
import { writeTextModel } from "../src/tasks/text-embedding/model-gen/generate.ts";

let root: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "text-ref-"));
  await writeTextModel(path.join(root, "wordpiece"), { tokenizer: "wordpiece" });
  await writeTextModel(path.join(root, "bpe"), { tokenizer: "bpe" });
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = root;
});
after(() => rm(root, { recursive: true, force: true }));

const SPECIAL_TEXTS = [
  "Crème brûlée: a DESSERT with cream, sugar and eggs!",
  "日本語 の 文字 and 中文 星",
  "🚀 Rocket launch at the observatory 🌕",
  "  spaces\tand\nnewlines   between   words  ",
  "x",
  "The striker's penalty (in the 89th minute) won the cup; fans cheered.",
];

async function ours(kind: string, task: Record<string, unknown>, texts: string[]) {
  const model = await loadTextModel({
    dir: path.join(root, kind),
    task: { kind: "text-embedding", ...task },
  });
  const scorer = await createFeedsScorer(model.onnxBytes);
  try {
    const sink = new EmbeddingRowCollector();
    await embedInProcess(
      model,
      scorer,
      [documentsBlock(texts.map((text, i) => ({ id: `t${i}`, text })))],
      sink,
    );
    assert.deepEqual(
      sink.rows.map((r) => r.id),
      texts.map((_, i) => `t${i}`),
    );
    return sink.rows.map((r) => r.vector);
  } finally {
    await scorer.close();
  }
}

async function transformersJs(
  kind: string,
  pooling: "mean" | "cls",
  texts: string[],
): Promise<Float32Array[]> {
  const extractor = await pipeline("feature-extraction", kind, { dtype: "fp32", device: "cpu" });
  try {
    const out: Float32Array[] = [];
    // Batches of 8 in input order, as a user would write it: padding differs from ours.
    for (let i = 0; i < texts.length; i += 8) {
      const t = await extractor(texts.slice(i, i + 8), { pooling, normalize: true });
      const [rows, dim] = t.dims as [number, number];
      const data = t.data as Float32Array;
      for (let r = 0; r < rows; r++) out.push(data.slice(r * dim, (r + 1) * dim));
    }
    return out;
  } finally {
    await extractor.dispose();
  }
}

function assertClose(a: Float32Array[], b: Float32Array[], texts: string[]): void {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => {
    const c = cosine(v, b[i] as Float32Array);
    assert.ok(c >= 0.9999, `text ${i} (${JSON.stringify(texts[i]?.slice(0, 40))}): cosine ${c}`);
  });
}

for (const kind of ["wordpiece", "bpe"] as const) {
  describe(`${kind}: our vectors = transformers.js feature-extraction`, () => {
    let texts: string[];
    before(async () => {
      const tok = await AutoTokenizer.from_pretrained(kind);
      // Texts that fit in 512 tokens: truncation is compared separately below.
      texts = [
        ...generateCorpus(48, 31)
          .map((d) => d.text)
          .filter((t) => tok.encode(t).length <= 512),
        ...SPECIAL_TEXTS,
      ];
      assert.ok(texts.length > 40);
    });

    it("mean pooling, normalised (cosine ≥ 0.9999 per document)", async () => {
      assertClose(await ours(kind, {}, texts), await transformersJs(kind, "mean", texts), texts);
    });

    it("CLS pooling, normalised", async () => {
      const sample = texts.slice(0, 16);
      assertClose(
        await ours(kind, { pooling: "cls" }, sample),
        await transformersJs(kind, "cls", sample),
        sample,
      );
    });

    it("truncated texts keep the final special token (tokenizers convention)", async () => {
      const maxLength = 24;
      const tok = await AutoTokenizer.from_pretrained(kind);
      const vocab = JSON.parse(await readFile(path.join(root, kind, "tokenizer.json"), "utf8"))
        .model.vocab;
      const [open, close] =
        kind === "wordpiece" ? [vocab["[CLS]"], vocab["[SEP]"]] : [vocab["<s>"], vocab["</s>"]];
      const long = texts
        .filter((t) => tok.encode(t, { add_special_tokens: false }).length > maxLength)
        .slice(0, 8);
      assert.ok(long.length >= 4);
      const model = await AutoModel.from_pretrained(kind, { dtype: "fp32", device: "cpu" });
      const reference: Float32Array[] = [];
      try {
        for (const text of long) {
          const content = tok.encode(text, { add_special_tokens: false });
          const ids = [open, ...content.slice(0, maxLength - 2), close].map((x: number) =>
            BigInt(x),
          );
          const n = ids.length;
          const feeds: Record<string, Tensor> = {
            input_ids: new Tensor("int64", BigInt64Array.from(ids), [1, n]),
            attention_mask: new Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
          };
          if (kind === "wordpiece")
            feeds.token_type_ids = new Tensor("int64", new BigInt64Array(n), [1, n]);
          const { last_hidden_state: h } = await model(feeds);
          const data = h.data as Float32Array;
          const dim = data.length / n;
          const mean = new Float32Array(dim);
          for (let t = 0; t < n; t++)
            for (let j = 0; j < dim; j++)
              mean[j] = (mean[j] as number) + (data[t * dim + j] as number) / n;
          reference.push(mean);
        }
      } finally {
        await model.dispose();
      }
      assertClose(await ours(kind, { maxLength }, long), reference, long);
    });
  });
}
