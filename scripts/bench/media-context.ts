/** The shared context of scripts/bench-media.ts's two parts (media-images.ts, media-parquet.ts). */
/** What both parts of the media bench share: sizes, settings, where to write, and the results. */
export interface MediaBenchContext {
  images: number;
  rows: number;
  intraOpThreads: number;
  rounds: number;
  batch: number;
  /** A scratch directory, removed by the caller. */
  root: string;
  /** Figures by name, printed (and written as JSON) at the end. */
  results: Record<string, unknown>;
}

/** `v` rounded to `d` decimals. */
export const round = (v: number, d = 1): number => Number(v.toFixed(d));
