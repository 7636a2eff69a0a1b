/** oci-common's console.warn retry lines become debug JSON log lines; other warnings pass through. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { routeSdkWarnings } from "../src/adapters/oci/sdk-log.ts";
import { createLogger } from "../src/core/log.ts";

it("routes the SDK's retry warnings into the structured log", () => {
  const passed: unknown[][] = [];
  console.warn = (...args: unknown[]) => passed.push(args);
  const lines: string[] = [];
  routeSdkWarnings(createLogger({ level: "debug", write: (l) => lines.push(l) }));
  console.warn(
    "Request failed with Exception : OciError: 503 ServiceUnavailable\nRetrying request -> Total Attempts : 1, Retrying after 1 seconds...",
  );
  console.warn("All retry attempts have exhausted. Total Attempts : 4");
  console.warn("something else");
  assert.deepEqual(passed, [["something else"]]);
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0] ?? "{}") as { level: string; msg: string; detail: string };
  assert.equal(first.level, "debug");
  assert.equal(first.msg, "oci-sdk attempt failed");
  assert.match(first.detail, /503 ServiceUnavailable/);
});
