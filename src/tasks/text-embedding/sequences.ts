/**
 * Content ids → model sequences, with the Hugging Face tokenizers convention that
 * sentence-transformers relies on: special tokens stay inside the max length, so a
 * truncated text still ends in [SEP] (`[CLS] t1 … t(n-2) [SEP]` for maxLength n).
 * Chunking cuts the content into windows of the same size that share `overlap`
 * tokens, like the tokenizers' overflowing tokens with a stride.
 */
import type { TextTokenizer } from "./tokenizer.ts";

/** Content tokens a sequence of `maxLength` has room for. */
export function contentRoom(tok: Pick<TextTokenizer, "prefix" | "suffix">, maxLength: number) {
  return maxLength - tok.prefix.length - tok.suffix.length;
}

/** Ids of one sequence: the prefix, content[start, end), the suffix. */
export function wrap(
  tok: Pick<TextTokenizer, "prefix" | "suffix">,
  content: readonly number[],
  start: number,
  end: number,
): Int32Array {
  const out = new Int32Array(tok.prefix.length + (end - start) + tok.suffix.length);
  out.set(tok.prefix, 0);
  for (let i = start; i < end; i++) out[tok.prefix.length + i - start] = content[i] as number;
  out.set(tok.suffix, tok.prefix.length + end - start);
  return out;
}

/**
 * The sequences for one text: one (truncated) sequence, or with `overlap` defined,
 * chunks of `maxLength` tokens each starting `room - overlap` content tokens after
 * the previous one; the last chunk ends with the text. An empty text is one sequence
 * of special tokens only.
 */
export function toSequences(
  tok: Pick<TextTokenizer, "prefix" | "suffix">,
  content: readonly number[],
  maxLength: number,
  overlap?: number,
): { sequences: Int32Array[]; truncated: boolean } {
  const room = contentRoom(tok, maxLength);
  if (content.length <= room)
    return { sequences: [wrap(tok, content, 0, content.length)], truncated: false };
  if (overlap === undefined) return { sequences: [wrap(tok, content, 0, room)], truncated: true };
  const step = room - overlap;
  const sequences: Int32Array[] = [];
  for (let start = 0; ; start += step) {
    const end = Math.min(start + room, content.length);
    sequences.push(wrap(tok, content, start, end));
    if (end === content.length) break;
  }
  return { sequences, truncated: false };
}
