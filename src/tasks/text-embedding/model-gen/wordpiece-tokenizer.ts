/**
 * A WordPiece `tokenizer.json` in the Hugging Face format, as a BERT uncased export
 * has it: BertNormalizer (lowercase, strip accents), BertPreTokenizer, WordPiece with
 * `##` continuations, TemplateProcessing `[CLS] $A [SEP]`.
 */
import { CJK_CHARACTERS, COMMON_WORDS, SUFFIXES, TOPIC_WORDS } from "./word-lists.ts";

/** Special tokens at ids 0..4, in this order. */
export const WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/** The vocabulary: specials, single characters (plain and `##`), suffixes, words. */
export function wordPieceVocabulary(): string[] {
  const vocab: string[] = [...WORDPIECE_SPECIALS];
  const seen = new Set<string>(vocab);
  const add = (token: string) => {
    if (!seen.has(token)) {
      seen.add(token);
      vocab.push(token);
    }
  };
  for (const ch of PUNCTUATION) add(ch);
  // Every lower-case letter and digit, alone and as a continuation: any ASCII word
  // then tokenizes to known pieces instead of [UNK].
  for (const ch of "0123456789abcdefghijklmnopqrstuvwxyz") {
    add(ch);
    add(`##${ch}`);
  }
  for (const ch of CJK_CHARACTERS) add(ch);
  for (const s of SUFFIXES) add(`##${s}`);
  for (const w of COMMON_WORDS) add(w);
  for (const list of Object.values(TOPIC_WORDS)) for (const w of list) add(w);
  return vocab;
}

function specialToken(id: number, content: string) {
  return {
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  };
}

/** The `tokenizer.json` object for `vocab` (its first five entries are the specials). */
export function wordPieceTokenizerJson(vocab: readonly string[]): Record<string, unknown> {
  const ids: Record<string, number> = {};
  vocab.forEach((t, i) => {
    ids[t] = i;
  });
  const cls = ids["[CLS]"] as number;
  const sep = ids["[SEP]"] as number;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: WORDPIECE_SPECIALS.map((t) => specialToken(ids[t] as number, t)),
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: true,
      lowercase: true,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [cls], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [sep], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: ids,
    },
  };
}

/** `tokenizer_config.json` for the WordPiece tokenizer (what transformers reads beside it). */
export function wordPieceTokenizerConfig(modelMaxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: "BertTokenizer",
    do_lower_case: true,
    strip_accents: true,
    tokenize_chinese_chars: true,
    model_max_length: modelMaxLength,
    cls_token: "[CLS]",
    sep_token: "[SEP]",
    pad_token: "[PAD]",
    unk_token: "[UNK]",
    mask_token: "[MASK]",
    clean_up_tokenization_spaces: true,
  };
}
