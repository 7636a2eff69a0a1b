import type { OutputFormat } from "../core/records.ts";
import type { ModelDescriptor } from "../model/descriptor.ts";
import type { BatchScores } from "../model/scorer.ts";

/**
 * A float32 score as text: 9 significant digits always round-trip a float32,
 * so `Math.fround(Number(text))` gives back the exact value onnxruntime produced.
 * Trailing zeros are trimmed to keep outputs small.
 */
export function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return "";
  if (v === 0) return "0";
  const s = v.toPrecision(9);
  const e = s.indexOf("e");
  if (e < 0) return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
  const mantissa = s.slice(0, e);
  return (mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa) + s.slice(e);
}

/** Quote a CSV field when it needs it (RFC 4180). */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Column names of an output row: key columns, then outputs, then the label. */
export function outputColumns(descriptor: ModelDescriptor, keyNames: string[]): string[] {
  const cols = [...keyNames, ...descriptor.outputs.map((o) => o.column)];
  if (descriptor.label) cols.push(descriptor.label.column);
  return cols;
}

/** Formats scored rows as JSONL or CSV lines (no header: the merger writes it once). */
export interface RowFormatter {
  /** CSV header line (with newline), or "" for JSONL. */
  readonly header: string;
  /** Rows `from..from+rows` of a batch; `keys` holds keyCount values per row from `keyBase`. */
  format(keys: string[], keyBase: number, scores: BatchScores, rows: number): string;
}

/** Build the formatter for a descriptor, key columns and output format. */
export function createRowFormatter(
  descriptor: ModelDescriptor,
  keyNames: string[],
  format: OutputFormat,
): RowFormatter {
  const outputs = descriptor.outputs;
  const label = descriptor.label;
  const labelIndex = label ? outputs.findIndex((o) => o.column === label.from) : -1;
  const k = keyNames.length;
  if (format === "csv") {
    const header = `${outputColumns(descriptor, keyNames).map(csvField).join(",")}\n`;
    return {
      header,
      format(keys, keyBase, scores, rows) {
        let out = "";
        for (let r = 0; r < rows; r++) {
          let line = "";
          for (let j = 0; j < k; j++) {
            line += `${j === 0 ? "" : ","}${csvField(keys[keyBase + r * k + j] as string)}`;
          }
          for (let j = 0; j < outputs.length; j++) {
            line += `${k + j === 0 ? "" : ","}${formatFloat32((scores[j] as Float32Array)[r] as number)}`;
          }
          if (label) {
            const v = (scores[labelIndex] as Float32Array)[r] as number;
            line += `,${csvField(label.labels[v >= label.threshold ? 1 : 0])}`;
          }
          out += `${line}\n`;
        }
        return out;
      },
    };
  }
  const keyPrefixes = keyNames.map((n, j) => `${j === 0 ? "{" : ","}${JSON.stringify(n)}:`);
  const outPrefixes = outputs.map(
    (o, j) => `${k + j === 0 ? "{" : ","}${JSON.stringify(o.column)}:`,
  );
  const labelPrefix = label ? `,${JSON.stringify(label.column)}:` : "";
  const labelTexts = label ? label.labels.map((l) => JSON.stringify(l)) : [];
  return {
    header: "",
    format(keys, keyBase, scores, rows) {
      let out = "";
      for (let r = 0; r < rows; r++) {
        let line = "";
        for (let j = 0; j < k; j++) {
          line += keyPrefixes[j] + JSON.stringify(keys[keyBase + r * k + j]);
        }
        for (let j = 0; j < outputs.length; j++) {
          const text = formatFloat32((scores[j] as Float32Array)[r] as number);
          line += outPrefixes[j] + (text === "" ? "null" : text);
        }
        if (label) {
          const v = (scores[labelIndex] as Float32Array)[r] as number;
          line += labelPrefix + labelTexts[v >= label.threshold ? 1 : 0];
        }
        out += `${line}}\n`;
      }
      return out;
    },
  };
}
