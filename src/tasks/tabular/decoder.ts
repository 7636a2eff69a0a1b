import type { ModelDescriptor } from "../../model/descriptor.ts";
import type { Outputs, RowSink, TaskDecoder, Tensor, Window } from "../task.ts";
import type { TabularMeta } from "./feature-batches.ts";

/** How one descriptor output is read from the model's output tensor. */
export interface OutputReader {
  /** Model output name. */
  name: string;
  /** Column within the output's last dimension. */
  index: number;
  /** How values print: float32 (9 significant digits), float64 (shortest round-trip) or integers. */
  kind: "float32" | "float64" | "int";
}

/** Value `r` of an output: column `index` of row `r` of a `[rows]` or `[rows, k]` tensor. */
function valueAt(t: Tensor, rows: number, r: number, index: number): number {
  const per = rows === 0 ? 0 : t.data.length / rows;
  const v = t.data[r * per + (per === 1 ? 0 : index)];
  return typeof v === "bigint" ? Number(v) : (v as number);
}

/**
 * Scored tabular batches → output rows: key columns, the descriptor's outputs, then
 * the label (from one output and a threshold), in input order.
 */
export class TabularDecoder implements TaskDecoder<TabularMeta> {
  private readonly labelOutput: number;

  constructor(
    private readonly descriptor: ModelDescriptor,
    private readonly readers: OutputReader[],
    private readonly keyCount: number,
  ) {
    const label = descriptor.label;
    this.labelOutput = label ? descriptor.outputs.findIndex((o) => o.column === label.from) : -1;
  }

  write(window: Window<TabularMeta>, outputs: Outputs[], sink: RowSink): void {
    const out = outputs[0];
    if (!out) return;
    const { keys, rows } = window.meta;
    const tensors = this.readers.map((o) => out[o.name] as Tensor);
    const label = this.descriptor.label;
    const k = this.keyCount;
    const data = keys.data;
    for (let r = 0; r < rows; r++) {
      sink.startRow();
      for (let j = 0; j < k; j++) {
        const idx = r * k + j;
        const start = keys.starts[idx] as number;
        if (start >= 0) sink.keyBytes(data, start, keys.ends[idx] as number);
        else sink.string(keys.stringAt(idx) as string);
      }
      let labelValue = 0;
      for (let j = 0; j < this.readers.length; j++) {
        const reader = this.readers[j] as OutputReader;
        const v = valueAt(tensors[j] as Tensor, rows, r, reader.index);
        if (j === this.labelOutput) labelValue = v;
        if (reader.kind === "float32") sink.float32(v);
        else if (reader.kind === "float64") sink.float64(v);
        else sink.int(v);
      }
      if (label) sink.string(label.labels[labelValue >= label.threshold ? 1 : 0] as string);
      sink.endRow();
    }
  }
}
