/**
 * Seeded chaos on the OCI adapters, against the stand-in: a 1,000,000-record job
 * scored by three worker processes on the real oci-sdk clients while a seeded
 * plan SIGKILLs and SIGTERMs them, stops every worker at once and starts new
 * ones (the "pipeline restart" of a cluster: state lives only in the services),
 * freezes one (SIGSTOP) past its lease so another takes its partition over
 * before it wakes, delivers the upload event several times through the splitter
 * function, and fails the services on the wire: 503s on object puts, row
 * writes, queue receives and stream puts, and NoSQL writes whose response is
 * lost after they were applied. After the run: the job completes, verify proves
 * every record exactly once, the predictions equal a clean embedded run's byte
 * for byte, and Streaming holds exactly one completion message for the job.
 *
 * `CHAOS_SEED=<n>` replays a plan (the seed is printed).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type OciPipeline, openOciPipeline } from "../src/adapters/oci/pipeline.ts";
import { silentLogger } from "../src/core/log.ts";
import type { PartitionRecord } from "../src/core/records.ts";
import { COALESCE_LIMIT } from "../src/pipeline/score-partition.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import {
  attemptFigures,
  chaosSeed,
  numericCsv,
  numericModel,
  planSignals,
  rngFor,
  sha256File,
} from "./helpers/chaos.ts";
import { objectFile, runJob, tempDir } from "./helpers/pipeline-fixture.ts";
import {
  type FullStandIn,
  fnCall,
  NAMESPACE,
  STREAM_ID,
  startFullStandIn,
} from "./oci-standin/index.ts";
import { abortConnection } from "./oci-standin/nosql.ts";
import { ociError } from "./oci-standin/server.ts";

const ROWS = 1_000_000;
const DATA_SEED = 7;
const WORKERS = 3;
const SPEC = { partitionBytes: 8 * 1024 * 1024, checkpointEvery: 5000, visibilitySeconds: 4 };
/** The most records one chunk holds (a due checkpoint may wait for the last commit). */
const MAX_CHUNK = COALESCE_LIMIT * SPEC.checkpointEvery;
const seed = chaosSeed();

let root: { dir: string; cleanup(): Promise<void> };
let stand: FullStandIn;
const children = new Set<ChildProcess>();

before(async () => {
  root = await tempDir("oci-chaos-");
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
  });
  assert.equal(built.status, 0, built.stderr);
  stand = await startFullStandIn({ maxDeliveries: 25 });
});
after(async () => {
  for (const c of children) {
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
  await stand?.close();
  await root?.cleanup();
});

describe(`chaos on the OCI stand-in (CHAOS_SEED=${seed})`, () => {
  it("1M records: workers killed, preempted, all restarted, one frozen past its lease; duplicate events; 503s and lost responses on the wire", async (t) => {
    const started = Date.now();
    const csv = await numericCsv(ROWS, DATA_SEED);
    const descriptor = await numericModel(DATA_SEED);
    const env = stand.env(root.dir);
    const oci: OciPipeline = await openOciPipeline(env, { log: silentLogger });

    const d = JSON.parse(await readFile(descriptor, "utf8")) as { onnx: string };
    await oci.store.put("models", "numeric/descriptor.json", await readFile(descriptor));
    await oci.store.put(
      "models",
      `numeric/${d.onnx}`,
      await readFile(path.join(path.dirname(descriptor), d.onnx)),
    );

    // ---- the splitter function, fed by "Events" with duplicate deliveries --------------
    const sock = path.join(root.dir, "fn-splitter", "lsnr.sock");
    mkdirSync(path.dirname(sock), { recursive: true });
    const fn = spawn(process.execPath, ["dist/functions.cjs"], {
      env: {
        ...process.env,
        ...stand.env(root.dir, {}, "splitter"),
        LOG_LEVEL: "error",
        FN_FORMAT: "http-stream",
        FN_LISTENER: `unix:${sock}`,
        BATCH_INFER_FUNCTION: "splitter",
        BATCH_INFER_JOB_DEFAULTS: JSON.stringify({
          model: { descriptor: `oci://models@${NAMESPACE}/numeric/descriptor.json` },
          output: { bucket: "scores" },
          ...SPEC,
        }),
      },
      stdio: "ignore",
    });
    children.add(fn);
    while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
    const eventRng = rngFor(seed, "oci-events");
    const deliveries = 2 + eventRng.int(2); // 2 or 3 at once
    const answers: Record<string, unknown>[] = [];
    let uploadEvent: object | undefined;
    stand.onEvent(async (event) => {
      uploadEvent = event;
      const calls = Array.from({ length: deliveries }, () => fnCall(sock, event));
      for (const r of await Promise.all(calls)) {
        assert.equal(r.status, 200, JSON.stringify(r.json));
        answers.push(r.json);
      }
    });
    await oci.store.put("input", "chaos/numeric.csv", createReadStream(csv));
    while (answers.length < deliveries) await new Promise((r) => setTimeout(r, 20));
    const jobIds = new Set(answers.map((a) => a.jobId));
    assert.equal(jobIds.size, 1, `${deliveries} deliveries of one upload → one job`);
    assert.equal(answers.filter((a) => a.created === true).length, 1);
    const jobId = String(answers[0]?.jobId);

    // ---- wire faults: seeded 503s per kind, lost responses on applied row writes -------
    const wireRng = rngFor(seed, "oci-wire");
    // [kind, path, method, probability per request]: rarer calls get a higher rate so each kind fires.
    const kinds: [string, RegExp, string, number][] = [
      ["object put", /^\/n\/[^/]+\/b\/scores\/o\//, "PUT", 0.03],
      ["row write", /^\/20190828\/tables\/[^/]+\/rows$/, "PUT", 0.02],
      ["queue receive", /^\/20210201\/queues\/[^/]+\/messages$/, "GET", 0.1],
      ["stream put", /^\/20180418\/streams\/[^/]+\/messages$/, "POST", 0.25],
    ];
    const injected: Record<string, number> = {};
    const budget = 5;
    const removeInjector = stand.server.inject((req) => {
      for (const [kind, re, method, rate] of kinds) {
        if (req.method !== method || !re.test(req.rawPath)) continue;
        if ((injected[kind] ?? 0) >= budget || wireRng.next() > rate) return undefined;
        injected[kind] = (injected[kind] ?? 0) + 1;
        return ociError(503, "ServiceUnavailable", `chaos: injected 503 (${kind})`);
      }
      return undefined;
    });
    let lostResponses = 0;
    const removeHook = stand.nosql.afterWrite((w) => {
      if (w.table !== "batch_infer_partitions" || lostResponses >= 4) return undefined;
      if (wireRng.next() > 0.03) return undefined;
      lostResponses++;
      return abortConnection();
    });

    // ---- worker processes and the seeded process plan ----------------------------------
    let nextId = 0;
    const live = new Set<ChildProcess>();
    const spawnWorker = () => {
      const id = `w${nextId++}`;
      const child = spawn(process.execPath, ["dist/worker.js"], {
        env: {
          ...process.env,
          ...stand.env(root.dir, {}, "worker"),
          WORKER_ID: id,
          LOG_LEVEL: "error",
          INFERENCE_THREAD: "0",
        },
        stdio: "ignore",
      });
      Object.assign(child, { workerId: id });
      children.add(child);
      live.add(child);
      child.on("exit", () => live.delete(child));
    };
    for (let i = 0; i < WORKERS; i++) spawnWorker();

    const planRng = rngFor(seed, "oci-signals");
    const plan = planSignals(planRng, { kills: [4, 6], terms: [2, 3], first: 0.05, last: 0.8 });
    const stallAt = planRng.uniform(0.1, 0.6);
    let stalled: { child: ChildProcess; at: number; id: string; partitions: number[] } | undefined;
    const fired: string[] = [];
    let done = false;
    let lastPartitions: PartitionRecord[] = [];
    const deadline = Date.now() + 400_000;
    let lateDuplicate = false;
    while (!done) {
      assert.ok(Date.now() < deadline, `job did not finish; fired ${fired.join(", ")}`);
      await new Promise((r) => setTimeout(r, 250));
      const job = (await oci.checkpoints.getJob(jobId).catch(() => undefined))?.value;
      if (job && ["completed", "completed_with_errors", "failed"].includes(job.state)) {
        done = true;
        break;
      }
      lastPartitions = await oci.checkpoints
        .listPartitions(jobId)
        .then((rows) => rows.map((r) => r.value))
        .catch(() => lastPartitions);
      const committed = lastPartitions.reduce((n, p) => n + p.records + p.errors, 0) / ROWS;
      const running = [...live].filter((c) => c !== stalled?.child);
      const pick = () => running[planRng.int(running.length)];
      while (plan[0] && plan[0].at <= committed) {
        const step = plan.shift();
        if (!step) break;
        if (step.action === "restart") {
          for (const c of running) c.kill("SIGKILL");
          fired.push(`restart@${committed.toFixed(2)}`);
        } else {
          const victim = pick();
          victim?.kill(step.action);
          fired.push(`${step.action}@${committed.toFixed(2)}`);
        }
      }
      if (!stalled && committed >= stallAt) {
        const holder = running.find((c) =>
          lastPartitions.some(
            (p) =>
              p.state === "running" && p.owner === (c as unknown as { workerId: string }).workerId,
          ),
        );
        if (holder) {
          const id = (holder as unknown as { workerId: string }).workerId;
          holder.kill("SIGSTOP");
          // The snapshot may be stale: confirm from the store, once a write it had on the
          // wire has had time to land, that the frozen worker still holds a partition.
          await new Promise((r) => setTimeout(r, 500));
          const held = (await oci.checkpoints.readPartitions(jobId)).filter(
            (p) => p.state === "running" && p.owner === id,
          );
          if (held.length > 0) {
            stalled = { child: holder, at: Date.now(), id, partitions: held.map((p) => p.index) };
            fired.push(
              `SIGSTOP ${id}@${committed.toFixed(2)} holding ${stalled.partitions.join(",")}`,
            );
          } else {
            holder.kill("SIGCONT"); // it had just finished: try again on a later tick
          }
        }
      }
      if (
        stalled &&
        stalled.at > 0 &&
        Date.now() - stalled.at > 3 * SPEC.visibilitySeconds * 1000
      ) {
        stalled.child.kill("SIGCONT");
        fired.push(`SIGCONT ${stalled.id}`);
        stalled.at = 0;
      }
      if (!lateDuplicate && committed >= 0.5 && uploadEvent) {
        lateDuplicate = true;
        const r = await fnCall(sock, uploadEvent);
        assert.equal(r.json.jobId, jobId, "a late duplicate event finds the same job");
        assert.equal(r.json.created, false);
      }
      // Keep the pool at strength, as the Deployment's ReplicaSet would.
      const alive = [...live].filter((c) => c.exitCode === null && c.signalCode === null).length;
      for (let i = alive; i < WORKERS; i++) spawnWorker();
    }
    if (stalled && stalled.at > 0) {
      // The job finished while the frozen worker slept: wake it now, give it time to try
      // its stale commit, and let the checks below show it changed nothing.
      stalled.child.kill("SIGCONT");
      fired.push(`SIGCONT ${stalled.id} (after the job finished)`);
      stalled.at = 0;
      await new Promise((r) => setTimeout(r, 3000));
    }
    removeInjector();
    removeHook();
    for (const c of live) c.kill("SIGTERM");

    const job = (await oci.checkpoints.getJob(jobId))?.value;
    assert.equal(job?.state, "completed", `job ${job?.state}: ${job?.error ?? ""}`);
    const result = job.result;
    assert.ok(result);
    assert.equal(result.records + result.errors, ROWS);

    const report = await verifyJob(oci, job);
    assert.ok(report.ok, JSON.stringify(report.checks.filter((c) => !c.ok)));

    const hash = createHash("sha256");
    for await (const chunk of await oci.store.read(result.output.bucket, result.output.object)) {
      hash.update(chunk as Buffer);
    }
    const clean = await runJob({
      dataDir: path.join(root.dir, "clean"),
      inputFile: csv,
      descriptor,
      spec: SPEC,
    });
    const cleanResult = clean.job.result;
    assert.ok(cleanResult);
    assert.equal(
      hash.digest("hex"),
      await sha256File(
        objectFile(
          path.join(root.dir, "clean"),
          cleanResult.output.bucket,
          cleanResult.output.object,
        ),
      ),
      "predictions under chaos on OCI equal a clean embedded run's",
    );

    assert.deepEqual(stand.server.denials, [], "least privilege was enough for every component");

    const completions = stand.streaming
      .messages(STREAM_ID)
      .filter((m) => m.key.toString("utf8") === jobId)
      .map((m) => JSON.parse(m.value.toString("utf8")) as { eventType: string })
      .filter((e) => e.eventType.endsWith("job.completed"));
    assert.equal(completions.length, 1, "exactly one completion message");

    const parts = (await oci.checkpoints.listPartitions(jobId)).map((r) => r.value);
    const figures = attemptFigures(parts, MAX_CHUNK);
    if (stalled) {
      for (const index of stalled.partitions) {
        const p = parts[index];
        assert.ok(
          p?.attempts.some((a) => a.worker === stalled?.id && a.outcome === "lost"),
          `partition ${index}, held by the frozen worker, was taken over`,
        );
        assert.notEqual(p?.attempts.at(-1)?.worker, stalled.id);
      }
    }
    assert.ok(
      fired.filter((f) => f.startsWith("SIGKILL")).length >= 4,
      `kills fired: ${fired.join(", ")}`,
    );
    t.diagnostic(`seed ${seed}: fired ${fired.join(", ")}`);
    t.diagnostic(
      `wire faults: ${JSON.stringify(injected)}, lost row-write responses ${lostResponses}; ${stand.server.requests.length} signed requests`,
    );
    t.diagnostic(
      `${parts.length} partitions, ${figures.attempts} attempts (${figures.lost} lost, ${figures.handedBack} handed back, ${figures.resumed} resumed from a checkpoint); re-processed at most ${figures.reprocessedAtMost} records; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
