/**
 * The tokenizer behind text embedding: `tokenizer.json` run by `@huggingface/tokenizers`
 * (pure JS, the library transformers.js uses; no native binary to ship per platform).
 * It gives content ids only; special tokens, truncation and chunking are applied by
 * sequences.ts with the Hugging Face tokenizers convention, from the special tokens the
 * tokenizer's post-processor adds around one text (found here once, by probing).
 *
 * The library loads when a tokenizer is first loaded, not with this module: the text
 * helpers below are reached by every process through the task registry, and
 * evaluating the library costs ~9 ms a start that only text-embedding jobs need.
 */
import type { Tokenizer } from "@huggingface/tokenizers";
import { ModelError } from "../../core/errors.ts";

/** A loaded tokenizer: content ids of a text, and what goes around them. */
export interface TextTokenizer {
  /** Token ids of `text` without special tokens. */
  encode(text: string): number[];
  /** Special tokens before and after one text (e.g. [CLS] / [SEP], <s> / </s>). */
  readonly prefix: readonly number[];
  readonly suffix: readonly number[];
  /** token_type_ids of the prefix, the content and the suffix (all 0 for BERT single texts). */
  readonly prefixTypes: readonly number[];
  readonly suffixTypes: readonly number[];
  readonly contentType: number;
  /** Id used for padding (its positions are masked out, so only its validity matters). */
  readonly padId: number;
  readonly vocabSize: number;
}

function indexOfRun(haystack: readonly number[], needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Load a tokenizer from parsed `tokenizer.json` and `tokenizer_config.json`. Throws
 * ModelError when the library can't build it or its special tokens can't be found.
 */
export async function loadTokenizer(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  where: string,
  configPadId?: number,
): Promise<TextTokenizer> {
  const { Tokenizer: TokenizerClass } = await import("@huggingface/tokenizers");
  let tok: Tokenizer;
  try {
    tok = new TokenizerClass(tokenizerJson, tokenizerConfig);
  } catch (err) {
    throw new ModelError(
      `${where}: tokenizer.json can't be loaded (${(err as Error).message}); it must be a Hugging Face tokenizers file (WordPiece, BPE or Unigram)`,
      { cause: err },
    );
  }
  // The post-processor's template is the same for every single text: find it on a probe.
  const probe = "hello world";
  const content = tok.encode(probe, { add_special_tokens: false }).ids;
  const full = tok.encode(probe, { add_special_tokens: true, return_token_type_ids: true });
  const at = content.length > 0 ? indexOfRun(full.ids, content) : -1;
  if (at < 0) {
    throw new ModelError(
      `${where}: can't find the text between the special tokens of tokenizer.json's post_processor`,
    );
  }
  const types = full.token_type_ids ?? full.ids.map(() => 0);
  const end = at + content.length;
  const vocab = tok.get_vocab(true);
  const padToken = tokenizerConfig.pad_token;
  const padName =
    typeof padToken === "string"
      ? padToken
      : padToken && typeof padToken === "object" && "content" in padToken
        ? String((padToken as { content: unknown }).content)
        : undefined;
  const padId = (padName !== undefined ? tok.token_to_id(padName) : undefined) ?? configPadId ?? 0;
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    prefix: full.ids.slice(0, at),
    suffix: full.ids.slice(end),
    prefixTypes: types.slice(0, at),
    suffixTypes: types.slice(end),
    contentType: types[at] ?? 0,
    padId,
    vocabSize: vocab.size,
  };
}

/**
 * The first `maxChars` characters of `text`, cut at the last whitespace in the final
 * 64 characters when there is one (a word cut in half would tokenize differently) and
 * never inside a surrogate pair. Keeps a 10 MB line from being tokenized whole.
 */
export function truncateChars(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let cut = maxChars;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  for (let i = cut; i > Math.max(0, cut - 64); i--) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) return text.slice(0, i);
  }
  return text.slice(0, cut);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `text` holds an unpaired surrogate (JSON `"\ud800"`): not valid Unicode. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}
