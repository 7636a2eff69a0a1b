/**
 * The building blocks of the plan's steps: `oci` argv with region and profile,
 * captures, look-up-then-create, waits. Terminology: an action either runs one
 * command or writes one rendered file; a capture stores a command's trimmed
 * stdout under a placeholder name.
 */
import path from "node:path";
import type { PlanContext } from "./context.ts";
import { fillDeep, ph } from "./placeholders.ts";
import type { RunAction, WriteAction } from "./types.ts";

/** The helpers every step builder uses, bound to one plan context. */
export function planTools(ctx: PlanContext) {
  const c = ctx.config;
  const C = c.compartmentOcid;
  const out = (...p: string[]) => path.join(ctx.out, ...p);
  const file = (p: string) => `file://${p}`;
  const region = ["--region", c.region, ...(c.profile ? ["--profile", c.profile] : [])];
  const oci = (argv: string[]) => ["oci", ...region, ...argv];
  const wait = (...states: string[]) => states.flatMap((s) => ["--wait-for-state", s]);
  const id = (q = "data.id") => ["--query", q, "--raw-output"];
  const capture = (
    note: string,
    name: string,
    argv: string[],
    ifEmpty?: string,
    mustFind = false,
  ): RunAction => {
    ctx.captured.add(name);
    return {
      kind: "run",
      note,
      argv,
      capture: name,
      ...(ifEmpty ? { ifEmpty } : {}),
      ...(mustFind ? { mustFind } : {}),
    };
  };
  const run = (note: string, argv: string[], ifEmpty?: string): RunAction => ({
    kind: "run",
    note,
    argv,
    ...(ifEmpty ? { ifEmpty } : {}),
  });
  const jsonFile = (note: string, path: string, value: unknown): WriteAction => ({
    kind: "write",
    note,
    file: path,
    render: (f) => `${JSON.stringify(fillDeep(value, f), null, 2)}\n`,
  });
  /**
   * A create that answers with a work request: wait for it (FAILED too, so a
   * failure is not a 20-minute wait) and require SUCCEEDED.
   */
  const workRequest = (note: string, v: string, argv: string[], ifEmpty?: string): RunAction => ({
    ...capture(
      note,
      `${v}_CREATE`,
      oci([...argv, ...wait("SUCCEEDED", "FAILED"), ...id("data.status")]),
      ifEmpty,
    ),
    expect: "SUCCEEDED",
  });
  /** Look a resource up by name; create it only when the lookup found nothing. */
  const ensure = (o: {
    what: string;
    v: string;
    lookup: string[];
    create: string[];
    /** The create answers with a work request, not the resource: wait for it, then look up again. */
    workRequest?: boolean;
    idQuery?: string;
    /** Why it is created the way it is (goes in the create command's comment). */
    why?: string;
  }): RunAction[] => {
    const createNote = `Create ${o.what}${o.why ? `: ${o.why}` : ""}`;
    return o.workRequest
      ? [
          capture(`Does ${o.what} exist?`, o.v, oci(o.lookup)),
          workRequest(createNote, o.v, o.create, o.v),
          capture(`OCID of the new ${o.what}`, o.v, oci(o.lookup), o.v, true),
        ]
      : [
          capture(`Does ${o.what} exist?`, o.v, oci(o.lookup)),
          capture(createNote, o.v, oci([...o.create, ...id(o.idQuery)]), o.v, true),
        ];
  };
  /**
   * Poll a `get` until the resource's lifecycle state is ACTIVE (every 10 s, at
   * most 20 minutes); FAILED, DELETING or DELETED fails the step.
   */
  const waitFor = (what: string, v: string, get: string[]): RunAction => ({
    ...capture(`Wait until ${what} is ACTIVE`, v, oci([...get, ...id('data."lifecycle-state"')])),
    poll: {
      until: "ACTIVE",
      fail: ["FAILED", "DELETING", "DELETED"],
      intervalSeconds: 10,
      maxSeconds: 1200,
    },
  });
  const NS = ph("OS_NAMESPACE");
  const registry = `${c.ocirRegionKey}.ocir.io/${NS}/${c.prefix}`;
  return {
    c,
    C,
    out,
    file,
    oci,
    wait,
    id,
    capture,
    run,
    jsonFile,
    workRequest,
    ensure,
    waitFor,
    NS,
    registry,
    fnImage: `${registry}/functions:${c.imageTag}`,
    workerImage: `${registry}/worker:${c.imageTag}`,
  };
}

/** What {@link planTools} gives a step builder. */
export type PlanTools = ReturnType<typeof planTools>;
