/**
 * What a sample of the input says about each of its columns (see descriptor-skeleton.ts):
 * its kind (number, boolean, category, text, empty), missing and distinct values, and
 * which column looks like the key.
 */

/** What the sample says about one column. */
export interface ColumnProfile {
  name: string;
  /** number: every value parses; boolean: true/false/yes/no words; category: few distinct strings; text: many. */
  kind: "number" | "boolean" | "category" | "text" | "empty";
  /** Rows with a value (not empty). */
  present: number;
  /** Rows with an empty value. */
  missing: number;
  /** Distinct values (up to MAX_TRACKED), in first-seen order. */
  distinct: string[];
  /** Every present value differs from the others. */
  unique: boolean;
}

/** Most distinct strings a column may have and still be taken for a category. */
export const MAX_CATEGORIES = 50;
/** Most distinct values a profile tracks per column. */
export const MAX_TRACKED = 10_000;
const BOOLEAN_WORDS = new Set(["true", "false", "yes", "no", "t", "f", "y", "n"]);
const ID_NAME = /(^|[_\s.-])(id|key|uuid|guid)$|^(id|key|uuid|guid)$|[a-z]Id$/i;
function isNumberText(v: string): boolean {
  return v.trim() !== "" && Number.isFinite(Number(v));
}

/** Profile each column from sample rows (values as text; "" = missing). */
export function profileColumns(header: string[], rows: string[][]): ColumnProfile[] {
  return header.map((name, c) => {
    const seen = new Set<string>();
    let present = 0;
    let missing = 0;
    let numbers = 0;
    let booleans = 0;
    let repeated = false;
    for (const row of rows) {
      const v = (row[c] ?? "").trim();
      if (v === "") {
        missing++;
        continue;
      }
      present++;
      if (isNumberText(v)) numbers++;
      if (BOOLEAN_WORDS.has(v.toLowerCase())) booleans++;
      if (seen.has(v)) repeated = true;
      else if (seen.size < MAX_TRACKED) seen.add(v);
    }
    const distinct = [...seen];
    let kind: ColumnProfile["kind"];
    if (present === 0) kind = "empty";
    else if (numbers === present) kind = "number";
    else if (booleans === present) kind = "boolean";
    else if (distinct.length <= MAX_CATEGORIES && (repeated || present <= 2)) kind = "category";
    else kind = "text";
    return { name, kind, present, missing, distinct, unique: !repeated };
  });
}

/** The key column: an id-like name whose sample values are all present and distinct. */
export function guessKeyColumn(profiles: ColumnProfile[]): string | undefined {
  const candidates = profiles.filter((p) => p.missing === 0 && p.present > 0 && p.unique);
  return (
    candidates.find((p) => ID_NAME.test(p.name))?.name ??
    // Else a leading text column of distinct values (a customer code, an email).
    (profiles[0] && candidates[0] === profiles[0] && profiles[0].kind === "text"
      ? profiles[0].name
      : undefined)
  );
}
