/**
 * A byte-level BPE `tokenizer.json` (GPT-2/RoBERTa style), for tests that must not
 * assume WordPiece: ByteLevel pre-tokenizer and decoder, merges learned here from the
 * word lists, RobertaProcessing `<s> $A </s>`, no `token_type_ids`.
 */
import { COMMON_WORDS, SUFFIXES, TOPIC_WORDS } from "./word-lists.ts";

/** Special tokens at ids 0..4 (RoBERTa's order). */
export const BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] as const;

/** GPT-2's reversible byte → printable character map (so every byte is a vocabulary symbol). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array(256);
  const direct = new Set(printable);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = String.fromCodePoint(direct.has(b) ? b : 256 + shifted++);
  }
  return map;
}

/** Word forms to learn merges from, with weights: " word" is what running text mostly has. */
function trainingForms(): Map<string, number> {
  const forms = new Map<string, number>();
  const add = (form: string, weight: number) => forms.set(form, (forms.get(form) ?? 0) + weight);
  const capital = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
  for (const w of COMMON_WORDS) {
    add(` ${w}`, 20);
    add(capital(w), 3);
  }
  for (const list of Object.values(TOPIC_WORDS)) {
    for (const w of list) {
      add(` ${w}`, 8);
      add(` ${capital(w)}`, 2);
      add(` ${w}s`, 2);
    }
  }
  for (const s of SUFFIXES) add(s, 1);
  return forms;
}

/**
 * Learn `count` merges over the training forms (most frequent pair first, ties broken
 * by the pair's text so the result never depends on map order).
 */
export function learnMerges(count: number): [string, string][] {
  const byteChar = bytesToUnicode();
  const utf8 = new TextEncoder();
  const words = [...trainingForms()].map(([form, weight]) => ({
    symbols: [...utf8.encode(form)].map((b) => byteChar[b] as string),
    weight,
  }));
  const merges: [string, string][] = [];
  for (let m = 0; m < count; m++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const key = `${w.symbols[i]} ${w.symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.weight);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, n] of pairs) {
      if (n > bestCount || (n === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split(" ") as [string, string];
    merges.push([left, right]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (w.symbols[i] === left && w.symbols[i + 1] === right) {
          out.push(left + right);
          i++;
        } else out.push(w.symbols[i] as string);
      }
      w.symbols = out;
    }
  }
  return merges;
}

/** Vocabulary for `merges`: specials, the 256 byte symbols, then each merge's result. */
export function bpeVocabulary(merges: readonly [string, string][]): string[] {
  const vocab: string[] = [...BPE_SPECIALS, ...bytesToUnicode()];
  const seen = new Set(vocab);
  for (const [a, b] of merges) {
    if (!seen.has(a + b)) {
      seen.add(a + b);
      vocab.push(a + b);
    }
  }
  return vocab;
}

/** The `tokenizer.json` object for a byte-level BPE vocabulary and its merges. */
export function bpeTokenizerJson(
  vocab: readonly string[],
  merges: readonly [string, string][],
): Record<string, unknown> {
  const ids: Record<string, number> = {};
  vocab.forEach((t, i) => {
    ids[t] = i;
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: BPE_SPECIALS.map((content) => ({
      id: ids[content] as number,
      content,
      single_word: false,
      lstrip: content === "<mask>",
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "RobertaProcessing",
      sep: ["</s>", ids["</s>"] as number],
      cls: ["<s>", ids["<s>"] as number],
      trim_offsets: true,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: ids,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** `tokenizer_config.json` for the BPE tokenizer. */
export function bpeTokenizerConfig(modelMaxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: "RobertaTokenizer",
    model_max_length: modelMaxLength,
    bos_token: "<s>",
    eos_token: "</s>",
    sep_token: "</s>",
    cls_token: "<s>",
    unk_token: "<unk>",
    pad_token: "<pad>",
    mask_token: "<mask>",
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
  };
}
