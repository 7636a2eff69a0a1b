/**
 * Deterministic documents about the generated model's topics, from one-line titles to
 * multi-paragraph articles, for tests, the benchmark and the demo. Each document knows
 * its topic, so a test can check that nearest neighbours are topical.
 */
import { Rng } from "../../../model/datasets.ts";
import { COMMON_WORDS, TOPIC_WORDS, TOPICS } from "./word-lists.ts";

/** One generated document. */
export interface CorpusDocument {
  id: string;
  topic: string;
  /** title, short (1-2 sentences), paragraph, or long (several paragraphs). */
  length: "title" | "short" | "paragraph" | "long";
  text: string;
}

/** Share of each length class (the rest are long documents). */
export interface LengthMix {
  title: number;
  short: number;
  paragraph: number;
}

/** 30% titles, 30% short texts, 25% paragraphs, 15% multi-paragraph documents. */
export const DEFAULT_LENGTH_MIX: LengthMix = { title: 0.3, short: 0.3, paragraph: 0.25 };

const ACCENTED: Record<string, string> = { cafe: "café", resume: "résumé", naive: "naïve" };

function word(rng: Rng, topic: readonly string[], other: readonly string[]): string {
  const r = rng.next();
  if (r < 0.32) {
    const w = rng.pick(topic);
    return rng.bernoulli(0.2) ? `${w}s` : w;
  }
  if (r < 0.36) return rng.pick(other);
  if (r < 0.37) return String(1900 + rng.int(130));
  if (r < 0.375) return rng.pick(Object.keys(ACCENTED).map((k) => ACCENTED[k] as string));
  return rng.pick(COMMON_WORDS);
}

function sentence(rng: Rng, topic: readonly string[], other: readonly string[]): string {
  const n = 6 + rng.int(15);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    let w = word(rng, topic, other);
    if (i === 0) w = w.charAt(0).toUpperCase() + w.slice(1);
    if (i > 2 && i < n - 2 && rng.bernoulli(0.08)) w += ",";
    parts.push(w);
  }
  return `${parts.join(" ")}${rng.bernoulli(0.1) ? "?" : "."}`;
}

function paragraph(rng: Rng, topic: readonly string[], other: readonly string[]): string {
  const n = 4 + rng.int(5);
  return Array.from({ length: n }, () => sentence(rng, topic, other)).join(" ");
}

/** `count` documents from `seed`; ids are `doc-000000`, `doc-000001`, … */
export function generateCorpus(
  count: number,
  seed = 7,
  mix: LengthMix = DEFAULT_LENGTH_MIX,
): CorpusDocument[] {
  const rng = new Rng(seed);
  const docs: CorpusDocument[] = [];
  for (let i = 0; i < count; i++) {
    const topic = rng.pick(TOPICS);
    const words = TOPIC_WORDS[topic] ?? [];
    const other = TOPIC_WORDS[rng.pick(TOPICS)] ?? [];
    const r = rng.next();
    let length: CorpusDocument["length"];
    let text: string;
    if (r < mix.title) {
      length = "title";
      const n = 3 + rng.int(8);
      text = Array.from({ length: n }, (_, k) => {
        const w = word(rng, words, other);
        return k === 0 || rng.bernoulli(0.5) ? w.charAt(0).toUpperCase() + w.slice(1) : w;
      }).join(" ");
    } else if (r < mix.title + mix.short) {
      length = "short";
      text = Array.from({ length: 1 + rng.int(2) }, () => sentence(rng, words, other)).join(" ");
    } else if (r < mix.title + mix.short + mix.paragraph) {
      length = "paragraph";
      text = paragraph(rng, words, other);
    } else {
      length = "long";
      text = Array.from({ length: 3 + rng.int(6) }, () => paragraph(rng, words, other)).join(
        "\n\n",
      );
    }
    docs.push({ id: `doc-${String(i).padStart(6, "0")}`, topic, length, text });
  }
  return docs;
}
