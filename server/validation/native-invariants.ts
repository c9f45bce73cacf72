import type { TypeSchema } from './type-schemas';

/**
 * Invariants made only of `name.empty()` and `name.exists()` joined by `or` (obs-6,
 * qty-3, att-1, cpt-2, sqty-1, the tim-* rules ...) are checked on the JSON directly: they
 * are most of the invariants a typical resource carries (a Synthea bundle: ~85 % of its
 * evaluations), and a FHIRPath evaluation costs ~5 µs where this costs well under one.
 * Anything else, and any value whose answer could depend on the engine's reading of
 * primitive extensions (`_code`), goes to the FHIRPath engine; a test compares both on
 * every such invariant of R4.
 */

type JsonObject = Record<string, unknown>;

/** true or false when the JSON decides it; undefined when the engine must. */
export type NativeInvariant = (value: JsonObject) => boolean | undefined;

interface Term {
  /** The JSON keys of the element (several for a choice: valueQuantity, valueString ...). */
  keys: string[];
  /** `exists()` holds when the element is present; `empty()` when it is absent. */
  present: boolean;
}

const TERM = /^([a-z][A-Za-z0-9]*)\.(empty|exists)\(\)$/;

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
  for (const text of expression.split(' or ')) {
    const match = TERM.exec(text.trim());
    if (!match) return undefined;
    const keys = [...schema.properties.values()].filter((p) => p.elementName === match[1]).map((p) => p.key);
    // Not an element of this type: the engine's answer (an error, or empty) is not ours to guess.
    if (keys.length === 0) return undefined;
    terms.push({ keys, present: match[2] === 'exists' });
  }
  return (value) => {
    let undecided = false;
    for (const term of terms) {
      const present = presence(value, term.keys);
      if (present === undefined) undecided = true;
      else if (present === term.present) return true;
    }
    return undecided ? undefined : false;
  };
}

function presence(value: JsonObject, keys: readonly string[]): boolean | undefined {
  for (const key of keys) {
    const v = value[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) return true;
    if (value[`_${key}`] !== undefined) return undefined;
  }
  return false;
}
