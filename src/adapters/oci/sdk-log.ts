import type { Logger } from "../../core/log.ts";

// What oci-common's retrier prints with console.warn on every failed attempt.
const SDK_RETRY_LINE =
  /^(Request failed with Exception|All retry attempts have exhausted|Request cannot be retried)/;

let routed: Logger | undefined;

/**
 * oci-common reports each failed attempt with a bare `console.warn`, which would
 * put unstructured lines among the worker's JSON logs. Route those lines into
 * the logger at debug level: a failure that matters surfaces as an error at
 * the call site, which logs it with its job and partition. Other console
 * output passes through untouched. Installed once per process.
 */
export function routeSdkWarnings(log: Logger): void {
  if (routed) {
    routed = log;
    return;
  }
  routed = log;
  const original = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    const text = args.map((a) => (typeof a === "string" ? a : String(a))).join(" ");
    if (SDK_RETRY_LINE.test(text)) {
      routed?.debug("oci-sdk attempt failed", { detail: text.slice(0, 2000) });
      return;
    }
    original(...args);
  };
}
