import type { JsonObject } from './json-shape';
import type { TypeSchema } from './type-schemas';

/**
 * Invariants made only of `path.empty()` and `path.exists()` joined by `or` (obs-6,
 * obs-7, qty-3, att-1, cpt-2, sqty-1, the tim-* rules ...) are checked on the JSON
 * directly: they are most of the invariants a typical resource carries (a Synthea
 * bundle: ~85 % of its evaluations), and a FHIRPath evaluation costs ~5 µs where this
 * costs well under one. A path is an element name, or one followed by `.name` and
 * `.where(…)` steps, which are empty when that element is absent; when it is present,
 * the engine decides. So it does for anything else, and for any value whose answer
 * could depend on the engine's reading of primitive extensions (`_code`). A test compares
 * both on every such invariant of R4.
 */


/** true or false when the JSON decides it; undefined when the engine must. */
export type NativeInvariant = (value: JsonObject) => boolean | undefined;

interface Term {
  /** The JSON keys of the path's first element (several for a choice: valueQuantity, valueString ...). */
  keys: string[];
  /** `exists()` holds when the path has a value; `empty()` when it has none. */
  present: boolean;
  /** The path goes on past its first element: only its absence decides. */
  deep: boolean;
}

const TERM = /^([a-z][A-Za-z0-9]*)(.*)\.(empty|exists)\(\)$/;

const compiled = new WeakMap<TypeSchema, Map<string, NativeInvariant | null>>();

/** The native form of `expression` in the context of `schema`, if it has one. */
export function nativeInvariant(expression: string, schema: TypeSchema): NativeInvariant | undefined {
  let bySchema = compiled.get(schema);
  if (!bySchema) compiled.set(schema, (bySchema = new Map()));
  let native = bySchema.get(expression);
  if (native === undefined) {
    native = compile(expression, schema) ?? null;
    bySchema.set(expression, native);
  }
  return native ?? undefined;
}

function compile(expression: string, schema: TypeSchema): NativeInvariant | undefined {
  const terms: Term[] = [];
  for (const text of topLevelOr(expression)) {
    const match = TERM.exec(text.trim());
    if (!match || !isNavigation(match[2])) return undefined;
    const keys = [...schema.properties.values()].filter((p) => p.elementName === match[1]).map((p) => p.key);
    // Not an element of this type: the engine's answer (an error, or empty) is not ours to guess.
    if (keys.length === 0) return undefined;
    terms.push({ keys, present: match[3] === 'exists', deep: match[2] !== '' });
  }
  return (value) => {
    let undecided = false;
    for (const term of terms) {
      const present = presence(value, term.keys);
      if (present === undefined || (present && term.deep)) undecided = true;
      else if (present === term.present) return true;
    }
    return undecided ? undefined : false;
  };
}

/** `a or b or c` split at the `or`s outside parentheses and string literals. */
function topLevelOr(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let at = 0; at < expression.length; at++) {
    const c = expression[at];
    if (c === "'") {
      at = expression.indexOf("'", at + 1);
      if (at < 0) return [expression];
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && expression.startsWith(' or ', at)) {
      parts.push(expression.slice(start, at));
      start = at + 4;
      at += 3;
    }
  }
  parts.push(expression.slice(start));
  return parts;
}

/**
 * Steps that keep an empty collection empty: `.name` and `.where(…)` (balanced
 * parentheses, nothing after them but further steps). Functions such as `exists()` or
 * `count()` turn empty into a value, operators combine: neither is accepted.
 */
function isNavigation(steps: string): boolean {
  let at = 0;
  while (at < steps.length) {
    const name = /^\.[a-z][A-Za-z0-9]*/.exec(steps.slice(at));
    if (!name) return false;
    at += name[0].length;
    if (name[0] === '.where' && steps[at] === '(') {
      let depth = 0;
      do {
        if (steps[at] === '(') depth++;
        else if (steps[at] === ')') depth--;
        else if (steps[at] === "'") at = steps.indexOf("'", at + 1);
        if (at < 0) return false;
        at++;
      } while (depth > 0 && at < steps.length);
      if (depth !== 0) return false;
    } else if (steps[at] === '(') {
      return false;
    }
  }
  return true;
}

function presence(value: JsonObject, keys: readonly string[]): boolean | undefined {
  for (const key of keys) {
    const v = value[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) return true;
    if (value[`_${key}`] !== undefined) return undefined;
  }
  return false;
}
