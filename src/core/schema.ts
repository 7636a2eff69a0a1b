import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { ValidationError } from "./errors.ts";

type ValidationCode = "INVALID_SPEC" | "INVALID_EVENT" | "INVALID_MODEL";

/** A compiled validator that throws ValidationError naming the failing path. */
export type Validator<T> = (value: unknown) => T;

// One Ajv for the process, created on first use (keeps cold start free of schema compiles).
let ajv: Ajv | undefined;

function getAjv(): Ajv {
  ajv ??= new Ajv({ allErrors: false, useDefaults: true, strict: true, allowUnionTypes: true });
  return ajv;
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
  let validate: ValidateFunction | undefined;
  return (value: unknown): T => {
    validate ??= getAjv().compile(schema);
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
