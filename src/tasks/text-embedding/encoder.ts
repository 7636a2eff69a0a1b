/**
 * The text-embedding task's encoder: records → windows of token-budget batches.
 *
 * Each accepted record is tokenized when it is added (so tokenizing the next window
 * overlaps the model running the previous one), cut to its sequences (one, truncated,
 * or chunks), and kept in the open window. A window closes when it holds
 * `windowTokens` tokens or `windowRecords` records, or on `take(true)`; its sequences
 * are then sorted by length and batched (batcher.ts). The decoder writes the window's
 * rows back in input order.
 */
import { createHash } from "node:crypto";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { TaskEncoder, Window } from "../task.ts";
import { planBatches } from "./batcher.ts";
import type { TextModel } from "./model-dir.ts";
import { toSequences } from "./sequences.ts";
import { type CsvLayout, TextRecordReader } from "./text-records.ts";
import { truncateChars } from "./tokenizer.ts";

/** The window bookkeeping the decoder needs. */
export interface TextWindowMeta {
  /** Ids of the window's accepted records, in input order. */
  ids: string[];
  /** sha256 of each record's object body (one-object-per-document inputs with `hashContent`). */
  hashes?: string[];
  /** Record r's sequences are firstSeq[r] … firstSeq[r+1]-1 (length records + 1). */
  firstSeq: Int32Array;
  /** Per sequence: its batch, its row there, and its real (unpadded) length. */
  seqBatch: Int32Array;
  seqRow: Int32Array;
  seqLen: Int32Array;
  /** Per batch: the sequence in each row. */
  batchSeqs: Int32Array[];
  /** Real tokens and padded tokens (rows × longest) in the window's batches. */
  tokens: number;
  paddedTokens: number;
}

/** Running totals of an encoder (for logs and the benchmark). */
export interface TextEncoderStats {
  records: number;
  badRecords: number;
  sequences: number;
  /** Records cut to maxLength tokens (truncation mode) or to maxChars characters. */
  truncated: number;
  tokens: number;
  paddedTokens: number;
}

/** Where the encoder's records come from, when that needs saying. */
export interface TextEncoderInput {
  /** Header and delimiter of a CSV input. */
  csv?: CsvLayout;
  /**
   * Record the sha256 of each object's bytes (documents under a prefix): the output
   * then says which version of a document a vector is of, which is what a refresh
   * compares against (a document may change between listing and reading).
   */
  hashContent?: boolean;
}

/** Encoder for one partition attempt (never shared). */
export class TextEmbeddingEncoder implements TaskEncoder<TextWindowMeta> {
  readonly stats: TextEncoderStats = {
    records: 0,
    badRecords: 0,
    sequences: 0,
    truncated: 0,
    tokens: 0,
    paddedTokens: 0,
  };
  private readonly reader: TextRecordReader;
  private readonly typeIds: (length: number) => Int32Array;
  private ids: string[] = [];
  private hashes: string[] = [];
  private readonly hashContent: boolean;
  private firstSeq: number[] = [0];
  private sequences: Int32Array[] = [];
  private openTokens = 0;
  private ready: Window<TextWindowMeta>[] = [];

  constructor(
    private readonly model: TextModel,
    input: TextEncoderInput = {},
  ) {
    this.reader = new TextRecordReader(model.settings.idField, model.settings.text, input.csv);
    this.hashContent = input.hashContent === true;
    const tok = model.tokenizer;
    const cache = new Map<number, Int32Array>();
    this.typeIds = (length) => {
      let t = cache.get(length);
      if (!t) {
        t = new Int32Array(length).fill(tok.contentType);
        t.set(tok.prefixTypes, 0);
        t.set(tok.suffixTypes, length - tok.suffixTypes.length);
        cache.set(length, t);
      }
      return t;
    };
  }

  /** `{ id }` of record `i` when it has one (for an errors output), else undefined. */
  keyOf(block: RecordBlock, i: number): Record<string, string> | undefined {
    const id = this.reader.read(block, i).id;
    return id === undefined ? undefined : { id };
  }

  add(block: RecordBlock, i: number): string | undefined {
    const record = this.reader.read(block, i);
    if (!("text" in record)) {
      this.stats.badRecords++;
      return record.reason;
    }
    const { settings, tokenizer } = this.model;
    const text = truncateChars(record.text, settings.maxChars);
    const content = tokenizer.encode(text);
    const { sequences, truncated } = toSequences(
      tokenizer,
      content,
      settings.maxLength,
      settings.chunkOverlap,
    );
    this.ids.push(record.id);
    if (this.hashContent) this.hashes.push(contentHash(block, i));
    for (const s of sequences) {
      this.sequences.push(s);
      this.openTokens += s.length;
    }
    this.firstSeq.push(this.sequences.length);
    this.stats.records++;
    this.stats.sequences += sequences.length;
    if (truncated || text.length < record.text.length) this.stats.truncated++;
    const { windowTokens, windowRecords } = this.model.batching;
    if (this.openTokens >= windowTokens || this.ids.length >= windowRecords) this.close();
    return undefined;
  }

  take(flush: boolean): Window<TextWindowMeta>[] {
    if (flush && this.ids.length > 0) this.close();
    const out = this.ready;
    this.ready = [];
    return out;
  }

  private close(): void {
    const sequences = this.sequences;
    const plan = planBatches(sequences, this.model.batching, {
      inputs: this.model.inputs,
      padId: this.model.tokenizer.padId,
      typeIdsOf: this.typeIds,
    });
    const seqLen = Int32Array.from(sequences, (s) => s.length);
    this.stats.tokens += this.openTokens;
    this.stats.paddedTokens += plan.paddedTokens;
    this.ready.push({
      batches: plan.batches,
      records: this.ids.length,
      meta: {
        ids: this.ids,
        ...(this.hashContent ? { hashes: this.hashes } : {}),
        firstSeq: Int32Array.from(this.firstSeq),
        seqBatch: plan.seqBatch,
        seqRow: plan.seqRow,
        seqLen,
        batchSeqs: plan.batchSeqs,
        tokens: this.openTokens,
        paddedTokens: plan.paddedTokens,
      },
    });
    this.ids = [];
    this.hashes = [];
    this.firstSeq = [0];
    this.sequences = [];
    this.openTokens = 0;
  }
}

/** sha256 of record `i`'s object bytes (the whole body, BOM included); "" for a line record. */
function contentHash(block: RecordBlock, i: number): string {
  const body = block.kind === "objects" ? block.bodies[i] : undefined;
  return body ? createHash("sha256").update(body).digest("hex") : "";
}
