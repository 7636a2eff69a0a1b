import { createRequire } from "node:module";
import type { Ajv, ErrorObject, Options, ValidateFunction } from "ajv";
import { ValidationError } from "./errors.ts";
import { sha256Hex } from "./ids.ts";
import { PRECOMPILED } from "./precompiled-validators.ts";

type ValidationCode = "INVALID_SPEC" | "INVALID_EVENT" | "INVALID_MODEL";

/** A compiled validator that throws ValidationError naming the failing path. */
export type Validator<T> = (value: unknown) => T;

/** The Ajv options every validator is compiled with (at run time, or at build time). */
export const AJV_OPTIONS: Options = {
  allErrors: false,
  useDefaults: true,
  strict: true,
  allowUnionTypes: true,
};

// One Ajv for the process, created on first use (keeps cold start free of schema compiles).
let ajv: Ajv | undefined;

/**
 * Ajv's compiler, required (synchronously: a validator is a plain function) when a
 * schema is first compiled at run time. Not a static import: in the bundles every
 * schema is precompiled, and evaluating the compiler cost ~34 ms of every start for
 * nothing. A require through createRequire is opaque to esbuild, so the compiler is
 * not in any bundle either; should a bundle ever meet a schema the build did not see,
 * it loads from node_modules, where Ajv ships as a dependency.
 */
function getAjv(): Ajv {
  if (!ajv) {
    const { Ajv: AjvClass } = createRequire(import.meta.url)("ajv") as typeof import("ajv");
    ajv = new AjvClass(AJV_OPTIONS);
  }
  return ajv;
}

/** Every schema a module declared a validator for (the build precompiles them). */
export const declaredSchemas: Record<string, unknown>[] = [];

/** The key a precompiled validator is found by: the hash of its schema's JSON. */
export function schemaKey(schema: Record<string, unknown>): string {
  return sha256Hex(JSON.stringify(schema));
}

/**
 * The schema's validator: precompiled into the bundle by the build (compiling a
 * schema at run time cost ~140 ms of the CLI's start and ~50 ms of each worker's,
 * most of it Ajv compiling its meta-schema), else compiled here (under tsx, or a
 * schema the build did not see).
 */
function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  if (PRECOMPILED.size > 0) {
    const found = PRECOMPILED.get(schemaKey(schema));
    if (found) return found;
  }
  return getAjv().compile(schema);
}

/** Turn the first Ajv error into a sentence a user can act on. */
export function describeAjvError(what: string, err: ErrorObject): string {
  const at = err.instancePath === "" ? "(top level)" : err.instancePath;
  let detail = err.message ?? "is invalid";
  if (err.keyword === "additionalProperties") {
    detail = `has unknown field "${String(err.params.additionalProperty)}"`;
  } else if (err.keyword === "enum") {
    detail = `must be one of ${JSON.stringify(err.params.allowedValues)}`;
  } else if (err.keyword === "false schema") {
    detail = "is not allowed here";
  } else if (err.keyword === "required") {
    detail = `is missing required field "${String(err.params.missingProperty)}"`;
  }
  return `${what} invalid at ${at}: ${detail} (schema ${err.schemaPath})`;
}

/**
 * Compile `schema` lazily; the returned function validates (filling defaults in
 * place) and returns the value typed, or throws ValidationError.
 */
export function compileValidator<T>(
  what: string,
  code: ValidationCode,
  schema: Record<string, unknown>,
): Validator<T> {
  declaredSchemas.push(schema);
  let validate: ValidateFunction | undefined;
  return (value: unknown): T => {
    validate ??= validatorFor(schema);
    if (validate(value)) return value as T;
    const first = validate.errors?.[0];
    if (!first) {
      throw new ValidationError(code, `${what} invalid`, { schemaPath: "#", instancePath: "" });
    }
    throw new ValidationError(code, describeAjvError(what, first), {
      schemaPath: first.schemaPath,
      instancePath: first.instancePath,
    });
  };
}
