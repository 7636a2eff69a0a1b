/**
 * Embeds a stream of record blocks in this process: the encoder → feeds scorer →
 * decoder path without the partition worker's claim/checkpoint machinery. A window's
 * batches are submitted to the scorer as soon as the window closes, and tokenizing
 * goes on while they run (up to `maxWindowsInFlight` windows ahead); rows come out in
 * input order. For tests, the benchmark, the demo and small refreshes; the partition
 * worker drives the same encoder and decoder with checkpoints between windows.
 */
import type { RecordBlock } from "../../sources/record-source.ts";
import type { Outputs, RowSink, Window } from "../task.ts";
import { TextEmbeddingDecoder } from "./decoder.ts";
import {
  TextEmbeddingEncoder,
  type TextEncoderInput,
  type TextEncoderStats,
  type TextWindowMeta,
} from "./encoder.ts";
import type { FeedsScorer } from "./feeds-scorer.ts";
import type { TextModel } from "./model-dir.ts";

/** Options of {@link embedInProcess}. */
export interface EmbedInProcessOptions extends TextEncoderInput {
  /** Windows scored ahead of the one being written (default 2). */
  maxWindowsInFlight?: number;
  /** Called for each bad record with its block, index and reason. */
  onBadRecord?: (block: RecordBlock, index: number, reason: string) => void;
}

/** Embed every record of `blocks` into `sink`; returns the encoder's totals. */
export async function embedInProcess(
  model: TextModel,
  scorer: FeedsScorer,
  blocks: AsyncIterable<RecordBlock> | Iterable<RecordBlock>,
  sink: RowSink,
  options: EmbedInProcessOptions = {},
): Promise<TextEncoderStats> {
  const encoder = new TextEmbeddingEncoder(model, options);
  const decoder = new TextEmbeddingDecoder(model);
  const outputNames = [model.output.name];
  const inFlight: { window: Window<TextWindowMeta>; outputs: Promise<Outputs[]> }[] = [];
  const limit = Math.max(1, options.maxWindowsInFlight ?? 2);
  const submit = (window: Window<TextWindowMeta>) => {
    // Each batch is pooled as it returns, so only [rows, dim] vectors wait for the window.
    const outputs = Promise.all(
      window.batches.map((b, k) =>
        scorer.run(b.feeds, outputNames).then((o) => decoder.reduce(window, k, o)),
      ),
    );
    // A rejection is awaited below in order; keep it from counting as unhandled meanwhile.
    outputs.catch(() => undefined);
    inFlight.push({ window, outputs });
  };
  const drain = async (keep: number) => {
    while (inFlight.length > keep) {
      const head = inFlight.shift();
      if (!head) break;
      decoder.write(head.window, await head.outputs, sink);
    }
  };
  for await (const block of blocks) {
    const count = block.kind === "lines" ? block.lines.count : block.count;
    for (let i = 0; i < count; i++) {
      const reason = encoder.add(block, i);
      if (reason !== undefined) options.onBadRecord?.(block, i, reason);
    }
    for (const window of encoder.take(false)) {
      submit(window);
      await drain(limit);
    }
  }
  for (const window of encoder.take(true)) submit(window);
  await drain(0);
  return encoder.stats;
}
