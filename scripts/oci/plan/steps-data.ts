/** Steps that create the data plane: namespace, buckets, queues, NoSQL tables, the stream. */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { InvalidArgumentError } from "../../../src/core/errors.ts";
import type { PlanContext } from "./context.ts";
import { ROOT } from "./paths.ts";
import { ph, sh } from "./placeholders.ts";
import { parseDdl } from "./repo-files.ts";
import type { PlanTools } from "./tools.ts";
import type { Action, Step } from "./types.ts";

/** namespace, buckets, queues, nosql, streaming. */
export function dataSteps(_ctx: PlanContext, t: PlanTools): Step[] {
  const { c, C, oci, id, capture, run, workRequest, ensure, waitFor, NS } = t;
  const steps: Step[] = [];
  steps.push({
    id: "namespace",
    title: "Object Storage namespace (bucket URIs, OCIR image paths)",
    actions: c.namespace
      ? []
      : [
          capture(
            "The tenancy's Object Storage namespace",
            "OS_NAMESPACE",
            oci(sh`os ns get --query data --raw-output`),
          ),
        ],
  });

  const buckets: [string, string, boolean][] = [
    ["INPUT", c.buckets.input, true],
    ["OUTPUT", c.buckets.output, false],
    ["MODELS", c.buckets.models, false],
    ["STATE", c.buckets.state, false],
  ];
  if (c.embeddingRefresh) buckets.push(["CORPUS", c.embeddingRefresh.bucket, true]);
  steps.push({
    id: "buckets",
    title: "Buckets: input (and corpus) with object events on; output, models, scaler state",
    actions: buckets.flatMap(([key, name, events]): Action[] => [
      capture(
        `Does bucket ${name} exist?`,
        `${key}_BUCKET_FOUND`,
        oci(sh`os bucket list --compartment-id ${C} --namespace-name ${NS} --all
               --query ${`data[?name=='${name}'].name | [0]`} --raw-output`),
      ),
      run(
        `Create bucket ${name} (private)`,
        oci(sh`os bucket create --compartment-id ${C} --namespace-name ${NS} --name ${name}
               --public-access-type NoPublicAccess`),
        `${key}_BUCKET_FOUND`,
      ),
      ...(events
        ? [
            run(
              `Turn on object events for ${name} (objectEventsEnabled defaults to false: no event, no rule)`,
              oci(sh`os bucket update --namespace-name ${NS} --bucket-name ${name}
                     --object-events-enabled true`),
            ),
          ]
        : []),
    ]),
  });

  const queue = (v: string, name: string, dlq: number, why: string) =>
    ensure({
      what: `queue ${name}`,
      why,
      v,
      workRequest: true,
      lookup: sh`queue queue-admin queue list --compartment-id ${C} --display-name ${name}
                 --lifecycle-state ACTIVE ${id("data.items[0].id")}`,
      create: sh`queue queue-admin queue create --compartment-id ${C} --display-name ${name}
                 --visibility-in-seconds ${c.queue.visibilitySeconds}
                 --retention-in-seconds ${c.queue.retentionSeconds}
                 --timeout-in-seconds ${c.queue.pollTimeoutSeconds}
                 --dlq-delivery-count ${dlq}`,
    });
  steps.push({
    id: "queues",
    title: "OCI Queue: partitions (with a DLQ) and the parking queue",
    actions: [
      ...queue(
        "QUEUE_OCID",
        `${c.prefix}-partitions`,
        c.queue.deadLetterDeliveryCount,
        `partitions; OCI moves a message to the DLQ after ${c.queue.deadLetterDeliveryCount} deliveries ` +
          "(a safety net above the pipeline's own maxAttempts, set high because hand-backs count as deliveries)",
      ),
      capture(
        "The partition queue's messages endpoint (QueueClient must use it)",
        "QUEUE_ENDPOINT",
        oci(sh`queue queue-admin queue get --queue-id ${ph("QUEUE_OCID")}
               ${id('data."messages-endpoint"')}`),
      ),
      ...queue(
        "PARKING_QUEUE_OCID",
        `${c.prefix}-parking`,
        0,
        "messages workers dead-letter on purpose, kept for inspection (no DLQ of its own)",
      ),
      capture(
        "The parking queue's messages endpoint (queues live in cells; it may differ)",
        "PARKING_QUEUE_ENDPOINT",
        oci(sh`queue queue-admin queue get --queue-id ${ph("PARKING_QUEUE_OCID")}
               ${id('data."messages-endpoint"')}`),
      ),
    ],
  });

  const ddlPath = path.resolve(ROOT, c.nosql.ddlFile);
  if (!existsSync(ddlPath))
    throw new InvalidArgumentError(`NoSQL DDL file ${c.nosql.ddlFile} does not exist`);
  const ddl = parseDdl(readFileSync(ddlPath, "utf8"));
  for (const t of [c.nosql.jobsTable, c.nosql.partitionsTable]) {
    if (!ddl.some((s) => s.kind === "table" && s.table === t))
      throw new InvalidArgumentError(`${c.nosql.ddlFile} has no CREATE TABLE for ${t}`);
  }
  steps.push({
    id: "nosql",
    title: `NoSQL tables from ${c.nosql.ddlFile}`,
    actions: ddl.flatMap((s): Action[] => {
      if (s.kind === "index") {
        const keys = JSON.stringify((s.columns ?? []).map((columnName) => ({ columnName })));
        return [
          workRequest(
            `Create index ${s.name} on ${s.table} if missing`,
            `INDEX_${s.table.toUpperCase()}_${(s.name ?? "").toUpperCase()}`,
            sh`nosql index create --compartment-id ${C} --table-name-or-id ${s.table}
               --name ${s.name ?? ""} --keys ${keys} --is-if-not-exists true`,
          ),
        ];
      }
      const limits = c.nosql.tableLimits[s.table] ??
        s.limits ?? { maxReadUnits: 50, maxWriteUnits: 50, maxStorageInGBs: 1 };
      const v = `TABLE_${s.table.toUpperCase()}_OCID`;
      return [
        capture(
          `Does table ${s.table} exist?`,
          v,
          oci(
            sh`nosql table list --compartment-id ${C} --name ${s.table} ${id("data.items[0].id")}`,
          ),
        ),
        workRequest(
          `Create table ${s.table} (limits ${JSON.stringify(limits)})`,
          v,
          sh`nosql table create --compartment-id ${C} --name ${s.table}
             --ddl-statement ${s.statement} --table-limits ${JSON.stringify(limits)}`,
          v,
        ),
      ];
    }),
  });

  const pool = `${c.prefix}-pool`;
  const stream = `${c.prefix}-completions`;
  // Not `--wait-for-state` on the creates: oracle/oci-cli changed what it takes there
  // (lifecycle states up to 3.82, work-request states from 3.83.0), so either value
  // is a usage error (exit 2) on one of them. The create answers with the resource,
  // whose state the `get` below polls on any version.
  steps.push({
    id: "streaming",
    title: "Streaming: a stream pool and the completion-event stream (message key = job id)",
    actions: [
      ...ensure({
        what: `stream pool ${pool}`,
        v: "STREAM_POOL_OCID",
        lookup: sh`streaming admin stream-pool list --compartment-id ${C} --name ${pool}
                   --lifecycle-state ACTIVE ${id("data[0].id")}`,
        create: sh`streaming admin stream-pool create --compartment-id ${C} --name ${pool}`,
      }),
      waitFor(
        `stream pool ${pool}`,
        "STREAM_POOL_STATE",
        sh`streaming admin stream-pool get --stream-pool-id ${ph("STREAM_POOL_OCID")}`,
      ),
      ...ensure({
        what: `stream ${stream}`,
        why: `${c.stream.partitions} partition(s), ${c.stream.retentionHours} h retention`,
        v: "STREAM_OCID",
        lookup: sh`streaming admin stream list --compartment-id ${C} --name ${stream}
                   --lifecycle-state ACTIVE ${id("data[0].id")}`,
        create: sh`streaming admin stream create --name ${stream}
                   --stream-pool-id ${ph("STREAM_POOL_OCID")} --partitions ${c.stream.partitions}
                   --retention-in-hours ${c.stream.retentionHours}`,
      }),
      waitFor(
        `stream ${stream}`,
        "STREAM_STATE",
        sh`streaming admin stream get --stream-id ${ph("STREAM_OCID")}`,
      ),
      capture(
        "The stream's messages endpoint (StreamClient must use it)",
        "STREAM_ENDPOINT",
        oci(sh`streaming admin stream get --stream-id ${ph("STREAM_OCID")}
               ${id('data."messages-endpoint"')}`),
      ),
    ],
  });
  return steps;
}
