/**
 * What each verb grants on each resource type, and what each API operation the
 * pipeline calls requires: the IAM facts the stand-in enforces. From Oracle's
 * policy references (cited per table); where no Oracle source settled a fact the
 * entry says UNCONFIRMED and takes the stricter reading (more permissions
 * required, fewer granted), so the stand-in can refuse what OCI would allow but
 * never allow what OCI would refuse.
 */

/** The four verbs, weakest first: each includes the permissions of the ones before it. */
export const VERBS = ["inspect", "read", "use", "manage"] as const;
export type Verb = (typeof VERBS)[number];

/** Permissions each verb adds over the verb before it. */
type VerbTable = Record<Verb, string[]>;

/**
 * Individual resource types. Sources:
 * - objects, buckets: https://docs.oracle.com/en-us/iaas/Content/Identity/policyreference/objectstoragepolicyreference.htm
 * - queues, queue-push, queue-pull: https://docs.oracle.com/en-us/iaas/Content/queue/policy-reference.htm
 *   (its verb table names `queues` for "all Queue resources"; which verb of `queues`
 *   adds QUEUE_PRODUCE/QUEUE_CONSUME is UNCONFIRMED: here only `manage`)
 * - streams, stream-push, stream-pull, stream-pools: https://docs.oracle.com/en-us/iaas/Content/Identity/policyreference/streamingpolicyreference.htm
 * - clusters: https://docs.oracle.com/en-us/iaas/Content/Identity/policyreference/contengpolicyreference.htm
 * - fn-function, fn-invocation: https://docs.oracle.com/en-us/iaas/Content/Identity/policyreference/functionspolicyreference.htm
 * - nosql-tables, nosql-rows: https://docs.oracle.com/en-us/iaas/nosql-database/doc/policy-reference.html
 *   (its tables could not be read here: UNCONFIRMED, modelled as read = NOSQL_ROWS_READ,
 *   use adds NOSQL_ROWS_INSERT and NOSQL_ROWS_DELETE)
 * - data-science-models: UNCONFIRMED (read = DATA_SCIENCE_MODEL_READ)
 */
export const RESOURCE_TYPES: Record<string, VerbTable> = {
  objects: {
    inspect: ["OBJECT_INSPECT"],
    read: ["OBJECT_READ"],
    use: ["OBJECT_OVERWRITE"],
    manage: [
      "OBJECT_CREATE",
      "OBJECT_DELETE",
      "OBJECT_VERSION_DELETE",
      "OBJECT_RESTORE",
      "OBJECT_UPDATE_TIER",
    ],
  },
  buckets: {
    inspect: ["BUCKET_INSPECT"],
    read: ["BUCKET_READ"],
    use: ["BUCKET_UPDATE"],
    manage: ["BUCKET_CREATE", "BUCKET_DELETE", "PAR_MANAGE", "RETENTION_RULE_MANAGE"],
  },
  "objectstorage-namespaces": {
    inspect: [],
    read: [],
    use: [],
    manage: ["OBJECTSTORAGE_NAMESPACE_READ", "OBJECTSTORAGE_NAMESPACE_UPDATE"],
  },
  queues: {
    inspect: ["QUEUE_INSPECT"],
    read: ["QUEUE_READ"],
    use: ["QUEUE_UPDATE"],
    manage: ["QUEUE_CREATE", "QUEUE_DELETE", "QUEUE_MOVE", "QUEUE_PRODUCE", "QUEUE_CONSUME"],
  },
  "queue-push": { inspect: [], read: [], use: ["QUEUE_PRODUCE"], manage: [] },
  "queue-pull": { inspect: [], read: [], use: ["QUEUE_CONSUME"], manage: [] },
  streams: {
    inspect: ["STREAM_INSPECT"],
    read: ["STREAM_READ"],
    use: ["STREAM_UPDATE", "STREAM_MOVE", "STREAM_PRODUCE", "STREAM_CONSUME"],
    manage: ["STREAM_CREATE", "STREAM_DELETE"],
  },
  "stream-push": { inspect: [], read: [], use: ["STREAM_PRODUCE"], manage: [] },
  "stream-pull": { inspect: [], read: [], use: ["STREAM_CONSUME"], manage: [] },
  "stream-pools": {
    inspect: ["STREAM_POOL_INSPECT"],
    read: ["STREAM_POOL_READ"],
    use: ["STREAM_POOL_UPDATE", "STREAM_POOL_MOVE"],
    manage: ["STREAM_POOL_CREATE", "STREAM_POOL_DELETE"],
  },
  "nosql-tables": {
    inspect: ["NOSQL_TABLE_INSPECT"],
    read: ["NOSQL_TABLE_READ"],
    use: ["NOSQL_TABLE_ALTER"],
    manage: ["NOSQL_TABLE_CREATE", "NOSQL_TABLE_DROP", "NOSQL_TABLE_MOVE"],
  },
  "nosql-rows": {
    inspect: [],
    read: ["NOSQL_ROWS_READ"],
    use: ["NOSQL_ROWS_INSERT", "NOSQL_ROWS_DELETE"],
    manage: [],
  },
  clusters: {
    inspect: ["CLUSTER_INSPECT"],
    read: ["CLUSTER_READ"],
    use: ["CLUSTER_USE"],
    manage: ["CLUSTER_CREATE", "CLUSTER_DELETE", "CLUSTER_UPDATE", "CLUSTER_MANAGE"],
  },
  "data-science-models": {
    inspect: ["DATA_SCIENCE_MODEL_INSPECT"],
    read: ["DATA_SCIENCE_MODEL_READ"],
    use: ["DATA_SCIENCE_MODEL_UPDATE"],
    manage: ["DATA_SCIENCE_MODEL_CREATE", "DATA_SCIENCE_MODEL_DELETE"],
  },
  "fn-function": {
    inspect: ["FN_FUNCTION_LIST"],
    read: ["FN_FUNCTION_READ"],
    use: [],
    manage: ["FN_FUNCTION_CREATE", "FN_FUNCTION_DELETE", "FN_FUNCTION_UPDATE"],
  },
  "fn-invocation": { inspect: [], read: [], use: ["FN_INVOCATION"], manage: [] },
};

/** Aggregate resource types: `<verb> family` = that verb on each member (same sources). */
export const FAMILIES: Record<string, string[]> = {
  "object-family": ["objects", "buckets", "objectstorage-namespaces"],
  "stream-family": ["streams", "stream-pools"],
  "nosql-family": ["nosql-tables", "nosql-rows"],
  "cluster-family": ["clusters"],
  "functions-family": ["fn-function", "fn-invocation"],
};

/** Permissions `verb` grants on `resourceType` (a type, a family or `all-resources`); undefined for an unknown type. */
export function permissionsOf(verb: Verb, resourceType: string): Set<string> | "all" | undefined {
  if (resourceType === "all-resources") return verb === "manage" ? "all" : undefined;
  const members = FAMILIES[resourceType] ?? (RESOURCE_TYPES[resourceType] ? [resourceType] : []);
  if (members.length === 0) return undefined;
  const out = new Set<string>();
  for (const member of members) {
    const table = RESOURCE_TYPES[member];
    if (!table) continue;
    for (const v of VERBS.slice(0, VERBS.indexOf(verb) + 1)) for (const p of table[v]) out.add(p);
  }
  return out;
}

/**
 * What an operation needs: every permission in `all`, and at least one of `any`
 * (when given). The target variables (`target.bucket.name`, `target.queue.id`, …)
 * are what a statement's `where` clause is matched against.
 */
export interface Requirement {
  operation: string;
  all: string[];
  any?: string[];
  compartmentId: string;
  target: Record<string, string>;
}

/**
 * Permissions per API operation (same sources as {@link RESOURCE_TYPES}).
 * NoSQL `Query` also needs NOSQL_TABLE_READ here: UNCONFIRMED, the stricter reading.
 * OKE's check of a cluster_request token needs CLUSTER_USE here: UNCONFIRMED.
 * Events and Resource Scheduler invoking a function need FN_FUNCTION_READ and
 * FN_INVOCATION here: UNCONFIRMED (older Events docs ask for both).
 */
export const OPERATIONS = {
  HeadObject: { all: [], any: ["OBJECT_READ", "OBJECT_INSPECT"] },
  GetObject: { all: ["OBJECT_READ"] },
  ListObjects: { all: ["OBJECT_INSPECT"] },
  PutObjectNew: { all: ["OBJECT_CREATE"] },
  PutObjectOverwrite: { all: ["OBJECT_OVERWRITE"] },
  DeleteObject: { all: ["OBJECT_DELETE"] },
  CreateMultipartUpload: { all: ["OBJECT_CREATE", "OBJECT_OVERWRITE"] },
  UploadPart: { all: ["OBJECT_CREATE", "OBJECT_OVERWRITE"] },
  CommitMultipartUpload: { all: ["OBJECT_CREATE", "OBJECT_OVERWRITE"] },
  AbortMultipartUpload: { all: ["OBJECT_DELETE"] },
  GetStats: { all: ["QUEUE_READ"] },
  PutMessages: { all: ["QUEUE_PRODUCE"] },
  GetMessages: { all: ["QUEUE_CONSUME"] },
  UpdateMessage: { all: ["QUEUE_CONSUME"] },
  DeleteMessage: { all: ["QUEUE_CONSUME"] },
  GetRow: { all: ["NOSQL_ROWS_READ"] },
  UpdateRow: { all: ["NOSQL_ROWS_INSERT"] },
  DeleteRow: { all: ["NOSQL_ROWS_DELETE"] },
  Query: { all: ["NOSQL_ROWS_READ", "NOSQL_TABLE_READ"] },
  StreamPutMessages: { all: ["STREAM_PRODUCE"] },
  StreamGetMessages: { all: ["STREAM_CONSUME"] },
  CreateCursor: { all: ["STREAM_CONSUME"] },
  GetCluster: { all: ["CLUSTER_READ"] },
  CreateKubeconfig: { all: ["CLUSTER_USE"] },
  KubernetesApiToken: { all: ["CLUSTER_USE"] },
  HeadModelArtifact: { all: ["DATA_SCIENCE_MODEL_READ"] },
  GetModelArtifactContent: { all: ["DATA_SCIENCE_MODEL_READ"] },
  InvokeFunction: { all: ["FN_FUNCTION_READ", "FN_INVOCATION"] },
} as const satisfies Record<string, { all: readonly string[]; any?: readonly string[] }>;

export type OperationName = keyof typeof OPERATIONS;

/** A requirement for `operation` on a resource in `compartmentId` with these target variables. */
export function requirement(
  operation: OperationName,
  compartmentId: string,
  target: Record<string, string> = {},
): Requirement {
  const op = OPERATIONS[operation] as { all: readonly string[]; any?: readonly string[] };
  return {
    operation,
    all: [...op.all],
    ...(op.any ? { any: [...op.any] } : {}),
    compartmentId,
    target,
  };
}
