/**
 * The end of a refresh (see refresh.ts): the new generation written, the corpus head
 * advanced to it, the completion event published (an outbox: retried until it is
 * marked sent), old generations and plans removed, and a dirty corpus given one more
 * refresh.
 */
import type { JobRecord } from "../core/records.ts";
import type { PipelineDeps } from "../pipeline/deps.ts";
import { refreshCompletedEvent } from "./events.ts";
import { writeGeneration } from "./generation.ts";
import { type RefreshCounts, type RefreshSettings, readHead, updateHead } from "./head.ts";
import type { CorpusLayout } from "./layout.ts";

/**
 * Write the refresh's generation and advance the head to it (compare-and-set: only
 * after every output is durable), publish the completion event, tidy up, and start
 * the one more refresh a dirty corpus asks for (`startNext`: requestRefresh, passed in
 * by refresh.ts, which calls this).
 */
export async function finishRefresh(
  deps: PipelineDeps,
  layout: CorpusLayout,
  job: JobRecord | undefined,
  startNext: (settings: RefreshSettings) => Promise<unknown>,
): Promise<RefreshCounts | undefined> {
  const { head } = await readHead(deps.store, layout);
  const a = head?.active;
  if (!head || !a?.plan || (a.jobId ?? undefined) !== job?.jobId) return undefined;
  const ref = await writeGeneration(deps.store, layout, head, a, job, new Date(deps.now()));
  const { head: after, changed } = await updateHead(
    deps.store,
    layout,
    head.corpus,
    deps.now,
    (h) => {
      if (h.active?.generation !== a.generation || h.active.plan !== a.plan) return undefined;
      h.generation = a.generation;
      if (a.model) h.model = a.model;
      h.current = ref;
      delete h.active;
      return h;
    },
  );
  await publishGeneration(deps, layout);
  if (!changed) return undefined;
  deps.log.info("refresh finished", {
    corpus: layout.root,
    generation: ref.generation,
    ...ref.counts,
  });
  await tidy(deps, layout, ref.generation).catch((err: unknown) =>
    deps.log.warn("could not remove old refresh objects", { error: String(err) }),
  );
  if (after.dirty && !after.active) {
    // Events came during this refresh: one more, now.
    try {
      await startNext(a.settings);
    } catch (err) {
      // It stays dirty: the next event or command runs it.
      deps.log.warn("the follow-up refresh could not start here; the corpus stays dirty", {
        corpus: layout.root,
        error: String(err),
      });
    }
  }
  return ref.counts;
}

/** Publish the current generation's completion event if it is not yet (outbox). */
export async function publishGeneration(deps: PipelineDeps, layout: CorpusLayout): Promise<void> {
  const { head } = await readHead(deps.store, layout);
  const g = head?.current;
  if (!head || !g || g.eventPublished || !head.model) return;
  await deps.events.publish([
    refreshCompletedEvent(layout, head.corpus, g, head.model, new Date(deps.now())),
  ]);
  await updateHead(deps.store, layout, head.corpus, deps.now, (h) => {
    if (h.current?.generation !== g.generation || h.current.eventPublished) return undefined;
    h.current.eventPublished = true;
    return h;
  });
}

/** Remove generations older than the previous one, and their plans. */
async function tidy(deps: PipelineDeps, layout: CorpusLayout, generation: number): Promise<void> {
  const old = generation - 2;
  if (old >= 1) {
    const g = layout.generation(old);
    for (const name of [g.embeddings, g.delta, g.state, g.failed, g.summary]) {
      await deps.store.delete(layout.bucket, name);
    }
  }
  let start: string | undefined;
  do {
    const page = await deps.store.list(layout.bucket, {
      prefix: `${layout.root}/plans/`,
      ...(start ? { start } : {}),
      limit: 1000,
    });
    for (const o of page.objects) {
      const g = Number(/\/plans\/g(\d+)-/.exec(o.name)?.[1] ?? Number.NaN);
      if (g < generation - 1) await deps.store.delete(layout.bucket, o.name);
    }
    start = page.nextStart;
  } while (start);
}
