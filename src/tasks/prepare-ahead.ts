/**
 * Runs a task's asynchronous `prepare` on blocks ahead of the consumer. A pump pulls
 * blocks from the source and starts `prepare` on each, with at most `depth` blocks
 * prepared (or preparing) and not yet taken; the consumer gets blocks in source
 * order, each once its preparation is done. The
 * pump keeps going while the consumer awaits the scorer, which is what overlaps
 * fetching and decoding with inference.
 */
import type { RecordBlock } from "../sources/record-source.ts";
import type { TaskEncoder } from "./task.ts";

type Item =
  | { kind: "block"; block: RecordBlock; ready: Promise<void> }
  | { kind: "end" }
  | { kind: "error"; error: unknown };

/** Blocks of `blocks`, each prepared by `encoder.prepare` (a pass-through when it has none). */
export async function* prepareAhead(
  blocks: AsyncIterable<RecordBlock>,
  encoder: Pick<TaskEncoder, "prepare">,
  depth = 2,
): AsyncGenerator<RecordBlock> {
  const prepare = encoder.prepare?.bind(encoder);
  if (!prepare) {
    yield* blocks;
    return;
  }
  const it = blocks[Symbol.asyncIterator]();
  const queue: Item[] = [];
  let wakeConsumer: (() => void) | undefined;
  let wakePump: (() => void) | undefined;
  let stopped = false;
  // Blocks whose preparation started and that the consumer has not taken yet.
  let outstanding = 0;
  const notifyConsumer = (): void => {
    const wake = wakeConsumer;
    wakeConsumer = undefined;
    wake?.();
  };
  const notifyPump = (): void => {
    const wake = wakePump;
    wakePump = undefined;
    wake?.();
  };
  const pump = (async () => {
    try {
      while (!stopped) {
        if (outstanding >= depth) {
          await new Promise<void>((resolve) => {
            wakePump = resolve;
          });
          continue;
        }
        const next = await it.next();
        if (next.done) {
          queue.push({ kind: "end" });
          break;
        }
        outstanding++;
        const ready = prepare(next.value);
        ready.catch(() => {}); // surfaced when the consumer reaches this block
        queue.push({ kind: "block", block: next.value, ready });
        notifyConsumer();
      }
    } catch (error) {
      queue.push({ kind: "error", error });
    }
    notifyConsumer();
  })();
  try {
    for (;;) {
      while (queue.length === 0) {
        await new Promise<void>((resolve) => {
          wakeConsumer = resolve;
        });
      }
      const item = queue.shift() as Item;
      if (item.kind === "end") return;
      if (item.kind === "error") throw item.error;
      try {
        await item.ready;
      } finally {
        outstanding--;
        notifyPump();
      }
      yield item.block;
    }
  } finally {
    stopped = true;
    notifyPump();
    await pump;
    await it.return?.();
  }
}
