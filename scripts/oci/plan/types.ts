/** Steps and actions: what the deploy plan is made of. */

/** Run one command; `capture` stores its trimmed stdout; `ifEmpty` runs it only while that variable is empty. */
export interface RunAction {
  kind: "run";
  note: string;
  argv: string[];
  capture?: string;
  ifEmpty?: string;
  /** An empty capture is a failure (the resource was just created, so it must be found). */
  mustFind?: boolean;
  /** The capture must equal this (a work request's final status). */
  expect?: string;
  /** Run again until the capture is `until`; a value in `fail`, or `maxSeconds` passing, fails the step. */
  poll?: { until: string; fail: string[]; intervalSeconds: number; maxSeconds: number };
}

/** Write one rendered file (function config, policy statements, rule, manifest). */
export interface WriteAction {
  kind: "write";
  note: string;
  /** Path relative to the repository root (or absolute). */
  file: string;
  render(f: (s: string) => string): string;
}

/** One action of a step. */
export type Action = RunAction | WriteAction;

/** A named group of actions; `--from <id>` resumes at it. */
export interface Step {
  id: string;
  title: string;
  actions: Action[];
}
