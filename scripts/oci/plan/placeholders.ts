/**
 * Placeholders `${NAME}`: a static config value or an id a command captures at
 * run time; and `sh`, which turns a template into argv.
 */
import { InvalidArgumentError } from "../../../src/core/errors.ts";

/** Values of placeholders known so far (static config values plus captured ids). */
export type Vars = Map<string, string>;

export const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;

/** The placeholder names a text uses, in order of first use. */
export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string))];
}

/**
 * Replace known placeholders. `keep` leaves unknown ones in place (dry run:
 * they are captured at run time); `strict` refuses them (a real run must not
 * send a literal `${QUEUE_OCID}` to OCI).
 */
export function fill(text: string, vars: Vars, mode: "keep" | "strict"): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => {
    const v = vars.get(name);
    if (v !== undefined) return v;
    if (mode === "keep") return whole;
    throw new InvalidArgumentError(
      `no value for \${${name}}: run the step that captures it first, or pass --set ${name}=VALUE`,
    );
  });
}

/** Fill every string inside a JSON value (keys stay as they are). */
export function fillDeep(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === "string") return f(value);
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, f));
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillDeep(v, f)]));
  return value;
}

/** A placeholder for a value captured at run time (or a config value): `ph("QUEUE_OCID")`. */
export function ph(name: string): string {
  return `\${${name}}`;
}

/**
 * argv from a template: literal text splits on whitespace; each interpolated
 * value is one argument however many spaces it holds (joined to literal text
 * it touches), and an interpolated array adds its items as separate arguments.
 *
 * @example sh`oci os ns get --query ${"data"}` // ["oci", "os", "ns", "get", "--query", "data"]
 */
export function sh(
  strings: TemplateStringsArray,
  ...values: Array<string | number | readonly string[]>
): string[] {
  const argv: string[] = [];
  let open = false; // whether the last argument may still grow (no whitespace since)
  const add = (text: string) => {
    if (open) argv[argv.length - 1] += text;
    else argv.push(text);
    open = true;
  };
  strings.forEach((literal, i) => {
    for (const token of literal.split(/(\s+)/)) {
      if (token === "") continue;
      if (/^\s+$/.test(token)) open = false;
      else add(token);
    }
    if (i >= values.length) return;
    const v = values[i];
    if (Array.isArray(v)) {
      argv.push(...(v as string[]));
      open = false;
    } else add(String(v));
  });
  return argv;
}
