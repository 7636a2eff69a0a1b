/**
 * Event-driven embedding refresh: what a corpus change sets in motion, on either
 * backend, through the ordinary ports (objects for the head, plan, state and
 * generations; the checkpoint store, queue and workers for the embedding job).
 *
 * A request (an object event, a command, a watched folder) either claims the corpus
 * head — then it lists the prefix, merge-joins it with the previous state (plan.ts)
 * and starts one embedding job for the new and changed documents — or, when a
 * refresh is already in flight, marks the corpus dirty (once: a burst of events is
 * one write) and returns. The job is an ordinary job whose merge finishes the refresh
 * (generation.ts writes the new set, delta and state), after which the head advances
 * by compare-and-set and the completion event goes out; a dirty corpus then gets
 * exactly one more refresh. The same corpus state plans to the same job id, and one
 * planner at a time holds the claim, so it never yields two jobs.
 */
import { randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.ts";
import { type JobSpecInput, resolveJobSpec } from "../core/job-spec.ts";
import type { JobRecord } from "../core/records.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import type { PipelineDeps } from "../pipeline/deps.ts";
import { type SplitterDeps, splitJob } from "../pipeline/splitter.ts";
import {
  type ActiveRefresh,
  type CorpusHead,
  type EmbeddingModelRef,
  emptyHead,
  type RefreshCounts,
  type RefreshSettings,
  readHead,
  updateHead,
} from "./head.ts";
import { type CorpusLayout, corpusLayout, layoutOfHead } from "./layout.ts";
import { planManifest, writePlan } from "./plan.ts";
import { finishRefresh, publishGeneration } from "./refresh-finish.ts";

/** How long a planner's claim holds before another request may take the planning over. */
export const PLANNING_LEASE_MS = 10 * 60_000;

/** What a refresh request did. */
export interface RefreshOutcome {
  /**
   * started: this request planned a refresh (its job runs, or it finished at once);
   * coalesced: one was in flight, the corpus is marked dirty and one more follows it;
   * up-to-date: nothing changed since the current generation;
   * finished: it planned and finished at once (deletions only, or a job already done).
   */
  action: "started" | "coalesced" | "up-to-date" | "finished";
  corpus: RefreshSettings["corpus"];
  /** Where the corpus's refresh objects are (`bucket/root`). */
  root: string;
  /** The current generation after this request. */
  generation: number;
  /** The refresh in flight, if any. */
  active?: { generation: number; jobId?: string; planned?: ActiveRefresh["planned"] };
  /** The counts of the generation this request finished. */
  counts?: RefreshCounts;
}

/** The spec of a refresh's embedding job. */
export function refreshJobSpec(
  settings: RefreshSettings,
  layout: CorpusLayout,
  generation: number,
): JobSpecInput {
  return {
    ...settings.job,
    input: { bucket: settings.corpus.bucket, prefix: settings.corpus.prefix },
    output: { bucket: layout.bucket, prefix: layout.jobsPrefix, format: "jsonl" },
    model: { descriptor: settings.model },
    runTag: `refresh-g${generation}`,
  };
}

/** The layout of `settings`, after checking they make a valid job spec. */
export function refreshLayout(settings: RefreshSettings): CorpusLayout {
  const layout = corpusLayout(settings.corpus, settings.output);
  resolveJobSpec(refreshJobSpec(settings, layout, 1));
  return layout;
}

/** Load the model and say what it is as a generation records it. */
async function embeddingModel(deps: PipelineDeps, descriptor: string): Promise<EmbeddingModelRef> {
  const model = await deps.loadModel(descriptor);
  if (model.kind !== "text-embedding") {
    throw new InvalidArgumentError(
      `model ${descriptor} is a ${model.kind} model; a corpus refresh embeds documents with a text-embedding model`,
    );
  }
  return {
    name: model.identity.name,
    version: model.identity.version,
    identity: model.text.embeddingIdentity,
    dimension: model.text.dimension,
  };
}

function outcome(
  action: RefreshOutcome["action"],
  layout: CorpusLayout,
  head: CorpusHead,
  counts?: RefreshCounts,
): RefreshOutcome {
  const a = head.active;
  return {
    action,
    corpus: head.corpus,
    root: `${layout.bucket}/${layout.root}`,
    generation: head.generation,
    ...(a
      ? {
          active: {
            generation: a.generation,
            ...(a.jobId ? { jobId: a.jobId } : {}),
            ...(a.planned ? { planned: a.planned } : {}),
          },
        }
      : {}),
    ...(counts ? { counts } : {}),
  };
}

/** Whether a planner's claim has lapsed (it died while listing). */
function stalePlanning(a: ActiveRefresh, now: number): boolean {
  return a.planning !== undefined && a.plan === undefined && a.planning.until < now;
}

/**
 * Ask for a refresh of `settings.corpus`: plan one now, or mark the corpus dirty when
 * one is in flight (and move that one on if it can be: a job that finished while no
 * one was there to finish the refresh).
 */
export async function requestRefresh(
  deps: SplitterDeps,
  settings: RefreshSettings,
): Promise<RefreshOutcome> {
  const layout = refreshLayout(settings);
  const owner = randomBytes(6).toString("hex");
  const { head } = await updateHead(deps.store, layout, settings.corpus, deps.now, (h) => {
    const now = deps.now();
    if (h.active && !stalePlanning(h.active, now)) {
      // One write per burst: a corpus already dirty stays as it is.
      if (h.dirty) return undefined;
      h.dirty = true;
      return h;
    }
    h.active = {
      generation: h.active?.generation ?? h.generation + 1,
      startedAt: new Date(now).toISOString(),
      settings,
      planning: { owner, until: now + PLANNING_LEASE_MS },
    };
    h.dirty = false;
    return h;
  });
  if (head.active?.planning?.owner !== owner) {
    await advanceIfStalled(deps, layout, head);
    return outcome("coalesced", layout, (await readHead(deps.store, layout)).head ?? head);
  }
  return plan(deps, layout, settings, owner);
}

/** List, join and record the plan of the claimed refresh; then start its job. */
async function plan(
  deps: SplitterDeps,
  layout: CorpusLayout,
  settings: RefreshSettings,
  owner: string,
): Promise<RefreshOutcome> {
  const log = deps.log.child({ corpus: layout.root });
  for (let round = 1; ; round++) {
    const model = await embeddingModel(deps, settings.model);
    const { head } = await readHead(deps.store, layout);
    const active = head?.active;
    if (!head || active?.planning?.owner !== owner) {
      return outcome("coalesced", layout, head ?? emptyHead(settings.corpus, new Date(deps.now())));
    }
    const written = await writePlan(deps.store, {
      layout,
      corpus: settings.corpus,
      head,
      model,
      dir: layout.planDir(active.generation, `${owner}-${round}`),
    });
    const p = written.planned;
    const nothing =
      p.new + p.changed + p.deleted + p.touched === 0 &&
      (head.model?.identity === model.identity || head.current === undefined);
    // Set by the compare-and-set below (the last, successful try's decision).
    const decision = { v: "lost" as "lost" | "up-to-date" | "again" | "planned" };
    const after = await updateHead(deps.store, layout, settings.corpus, deps.now, (h) => {
      decision.v = "lost";
      const a = h.active;
      if (a?.planning?.owner !== owner) return undefined;
      if (nothing && h.dirty) {
        // Events came while we listed: what they changed may not be in this listing.
        decision.v = "again";
        h.dirty = false;
        a.planning = { owner, until: deps.now() + PLANNING_LEASE_MS };
        return h;
      }
      if (nothing) {
        decision.v = "up-to-date";
        delete h.active;
        return h;
      }
      decision.v = "planned";
      delete a.planning;
      h.active = {
        ...a,
        model,
        plan: written.plan,
        plannedAt: deps.now(),
        ...(written.manifest ? { manifest: written.manifest } : {}),
        planned: p,
      };
      return h;
    });
    const decided = decision.v;
    if (decided !== "planned") {
      await deps.store.delete(layout.bucket, written.plan);
      if (written.manifest) await deps.store.delete(layout.bucket, written.manifest);
    }
    if (decided === "again") continue;
    if (decided !== "planned") {
      log.info(decided === "lost" ? "refresh claim lost" : "corpus is up to date", {
        generation: after.head.generation,
      });
      return outcome(decided === "lost" ? "coalesced" : "up-to-date", layout, after.head);
    }
    log.info("refresh planned", { generation: active.generation, ...p });
    const finished = await advance(deps, layout);
    const now = (await readHead(deps.store, layout)).head ?? after.head;
    return finished ? outcome("finished", layout, now, finished) : outcome("started", layout, now);
  }
}

/** How long a planned refresh may wait for its job before a request creates it. */
export const SPLIT_STALL_MS = 30_000;

/**
 * A coalesced request moves the refresh in flight on only where its owner can't: a
 * job that finished with no one left to finish the refresh, or a plan whose planner
 * died before creating the job. (Not on every event: a burst would split in parallel.)
 */
async function advanceIfStalled(
  deps: SplitterDeps,
  layout: CorpusLayout,
  head: CorpusHead,
): Promise<void> {
  const a = head.active;
  if (!a?.plan) return;
  if (!a.jobId) {
    if (deps.now() - (a.plannedAt ?? 0) >= SPLIT_STALL_MS) await advance(deps, layout);
    return;
  }
  const job = (await deps.checkpoints.getJob(a.jobId))?.value;
  if (job && TERMINAL_JOB_STATES.includes(job.state) && job.completionPublished) {
    await advance(deps, layout);
  }
}

/**
 * Move the refresh in flight on as far as it goes now: create its job if it has none
 * yet (idempotent: the same plan is the same job), finish it if nothing was to be
 * embedded or its job is done. Returns the counts when it finished a generation.
 */
export async function advance(
  deps: SplitterDeps,
  layout: CorpusLayout,
): Promise<RefreshCounts | undefined> {
  const { head } = await readHead(deps.store, layout);
  let a = head?.active;
  if (!head || !a?.plan) {
    if (head?.current && !head.current.eventPublished) await publishGeneration(deps, layout);
    return undefined;
  }
  if (a.manifest && !a.jobId) {
    const jobId = await splitRefreshJob(deps, layout, a);
    const { head: after } = await updateHead(deps.store, layout, head.corpus, deps.now, (h) => {
      const cur = h.active;
      if (!cur || cur.generation !== a?.generation || cur.plan !== a?.plan || cur.jobId) {
        return undefined;
      }
      cur.jobId = jobId;
      return h;
    });
    a = after.active;
    if (!a?.plan) return undefined;
  }
  if (!a.manifest)
    return finishRefresh(deps, layout, undefined, (next) => requestRefresh(deps, next));
  const job = a.jobId ? (await deps.checkpoints.getJob(a.jobId))?.value : undefined;
  if (job && TERMINAL_JOB_STATES.includes(job.state) && job.completionPublished) {
    return finishRefresh(deps, layout, job, (next) => requestRefresh(deps, next));
  }
  return undefined;
}

/** Create the embedding job of a planned refresh (the manifest is the job's input). */
async function splitRefreshJob(
  deps: SplitterDeps,
  layout: CorpusLayout,
  a: ActiveRefresh,
): Promise<string> {
  const manifest = a.manifest as string;
  const corpus = a.settings.corpus;
  const result = await splitJob(deps, refreshJobSpec(a.settings, layout, a.generation), {
    planned: async (spec) => {
      const m = await planManifest(deps.store, layout.bucket, manifest, {
        ...(spec.partitionRecords !== undefined ? { maxObjects: spec.partitionRecords } : {}),
        maxBytes: spec.partitionBytes,
      });
      return {
        input: {
          bucket: layout.bucket,
          object: manifest,
          etag: m.etag,
          size: m.bytes,
          format: "objects",
          columns: [],
          dataStart: 0,
          objects: {
            bucket: corpus.bucket,
            prefix: corpus.prefix,
            count: m.objects,
            bytes: m.objectBytes,
            sha256: m.sha256,
          },
        },
        // The corpus state this refresh embeds: the generation it builds on and the
        // documents it embeds. The same state is the same job, however often it is asked.
        identity: {
          bucket: corpus.bucket,
          object: corpus.prefix,
          etag: `refresh:${layout.root}:g${a.generation}:${m.sha256}`,
        },
        ranges: m.partitions.map((p) => ({ start: p.start, end: p.end })),
        // The manifest belongs to the refresh (the plan), not to one try at a job.
        discard: async () => undefined,
      };
    },
    refresh: { bucket: layout.bucket, head: layout.head, generation: a.generation },
  });
  deps.log.info("refresh job created", {
    corpus: layout.root,
    generation: a.generation,
    jobId: result.jobId,
    created: result.created,
    partitions: result.partitions,
  });
  return result.jobId;
}

/**
 * The merge of a refresh's embedding job finishes the refresh (called by the merger
 * once the job's completion is published; idempotent, so a redelivered merge repeats
 * it harmlessly).
 */
export async function finishRefreshOf(deps: PipelineDeps, job: JobRecord): Promise<void> {
  if (!job.refresh || !TERMINAL_JOB_STATES.includes(job.state) || !job.completionPublished) return;
  const layout = layoutOfHead(job.refresh.bucket, job.refresh.head);
  const { head } = await readHead(deps.store, layout);
  if (head?.active?.jobId === job.jobId) {
    await finishRefresh(deps, layout, job, (next) => requestRefresh(deps, next));
  } else if (head?.current?.jobId === job.jobId && !head.current.eventPublished) {
    await publishGeneration(deps, layout);
  }
}

/** The corpus head of `settings` (undefined before the first refresh). */
export async function corpusHead(
  deps: Pick<PipelineDeps, "store">,
  settings: Pick<RefreshSettings, "corpus" | "output">,
): Promise<CorpusHead | undefined> {
  return (await readHead(deps.store, corpusLayout(settings.corpus, settings.output))).head;
}
