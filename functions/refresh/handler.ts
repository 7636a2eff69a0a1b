import { InvalidArgumentError, PipelineError } from "../../src/core/errors.ts";
import { validateRequest } from "../../src/pipeline/requests.ts";
import type { SplitterDeps } from "../../src/pipeline/splitter.ts";
import { type CorpusEvent, inCorpus, parseCorpusEvent } from "../../src/refresh/events.ts";
import type { RefreshSettings } from "../../src/refresh/head.ts";
import { type RefreshOutcome, refreshLayout, requestRefresh } from "../../src/refresh/refresh.ts";

/** What the refresh function answers (always a value: the FDK crashes on undefined). */
export type RefreshAnswer = RefreshOutcome & {
  event?: { id: string; type: CorpusEvent["eventType"]; object: string };
};

/**
 * The refresh function's handler (fired by the Events rule on the corpus prefix):
 * an object created, updated or deleted under the prefix asks for a refresh, which
 * plans one (and enqueues its embedding job) or marks the corpus dirty when one is
 * in flight. `{"refresh": true}` asks by hand. An event from elsewhere is refused:
 * above all the refresh's own outputs, which would refresh forever.
 */
export function createRefreshHandler(deps: SplitterDeps, settings: RefreshSettings) {
  // Fail at the first call with what to fix, not at every event.
  refreshLayout(settings);
  return async (input: unknown): Promise<RefreshAnswer> => {
    if (input && typeof input === "object") {
      const body = input as Record<string, unknown>;
      if (typeof body.eventType === "string") {
        const event = parseCorpusEvent(input);
        if (!inCorpus(event, settings.corpus)) {
          throw new PipelineError(
            "INVALID_EVENT",
            `object event for ${event.bucket}/${event.object}, which is not under the corpus ${settings.corpus.bucket}/${settings.corpus.prefix}: point the Events rule at the corpus prefix only`,
          );
        }
        const outcome = await requestRefresh(deps, settings);
        return {
          ...outcome,
          event: { id: event.eventID, type: event.eventType, object: event.object },
        };
      }
      if ("refresh" in body) {
        validateRequest.refresh(input);
        return requestRefresh(deps, settings);
      }
    }
    throw new InvalidArgumentError(
      `expected an OCI object event under ${settings.corpus.bucket}/${settings.corpus.prefix}, or {"refresh": true}`,
    );
  };
}
