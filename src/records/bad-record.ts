import { PipelineError, type PipelineErrorOptions } from "../core/errors.ts";

/**
 * One input record that can't be scored (bad UTF-8, bad JSON, bad CSV quoting, a
 * non-numeric feature). Never retryable: the same bytes fail the same way, so the
 * record goes to the errors output and counts against the job's error threshold.
 */
export class BadRecordError extends PipelineError {
  /** Short, stable description of what is wrong with the record (also the message). */
  readonly reason: string;

  constructor(reason: string, options?: PipelineErrorOptions) {
    super("BAD_RECORD", reason, {
      ...options,
      retryable: false,
      details: { ...options?.details, reason },
    });
    this.reason = reason;
  }
}
