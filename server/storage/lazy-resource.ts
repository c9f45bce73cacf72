import type { Resource } from '@medplum/fhirtypes';
import pg from 'pg';

/**
 * A stored resource handed out without parsing it: PostgreSQL's text of its jsonb
 * (the jsonb column received as text: JSONB_AS_TEXT), parsed member by member only when something reads a member. A search page of 20
 * Synthea Patients (3.7 kB each) spent ~20 µs per resource in JSON.parse and ~14 µs in
 * JSON.stringify; nothing on the way out reads most members (a plain search reads
 * `resourceType` and `id`, its AuditEvent `subject` or `patient` if there is one), and
 * those go into the response as PostgreSQL wrote them.
 *
 * A Proxy over a plain object holding `resourceType` and `id`. The text is cut into its
 * top-level members (`topLevelMembers`) only when a member beyond those two is read,
 * listed or changed; a member read is parsed into the object and is an ordinary property
 * from then on, and writes, deletes and additions go to the object. A member asked for
 * and absent is known to be absent without cutting: PostgreSQL writes every key as
 * `"key": ` and escapes every quote inside a string, so that text occurs only as a key.
 *
 * `toJSON` writes it: inside `stringifyWithStoredText` as `{"resourceType": …` and then
 * the stored text of the members never read, written or deleted (a member read may have
 * been changed in place) and the values of the others; outside, as the plain object, so
 * a caller of JSON.stringify gets what it always got. Members keep PostgreSQL's order
 * (by key length: `id`, then `meta`, `text`…), after `resourceType`; the order of a JSON
 * object's members carries no meaning in FHIR. structuredClone refuses a Proxy: search
 * results, the only lazy resources, are never cloned.
 */

interface Members {
  /** The object behind the Proxy (the Proxy itself must not be asked for its keys here: that parses every member). */
  target: Target;
  /** The stored text. */
  text: string;
  resourceType: string;
  /** Set once the text is cut: member names in stored order, and per member its offsets [name's opening quote, value's start, value's end) at 3i, 3i + 1, 3i + 2. */
  names?: string[];
  spans?: number[];
  /** Member name → its index, while it is as stored: never written, deleted or (unless `id`, a string) read. */
  untouched?: Map<string, number>;
  /** Whether any member was written, deleted or added (resourceType included): the text is then no longer the resource. */
  changed: boolean;
}

const MEMBERS = Symbol('members as stored');
/** The whole string value `"\u0000stored:N\u0000"` as JSON.stringify writes it; a string holds no raw NUL, so nothing else matches. */
const PLACEHOLDER = /"\\u0000stored:(\d+)\\u0000"/g;
/** PostgreSQL writes `id`, the shortest key of a resource, first. */
const LEADING_ID = /^\{"id": "([A-Za-z0-9\-.]{1,64})"[,}]/;

/** Texts collected by the stringifyWithStoredText running now (JSON.stringify is synchronous). */
let collected: string[] | undefined;

type Target = Record<string | symbol, unknown> & { [MEMBERS]: Members };

/** A resource of `resourceType` (the table's) over PostgreSQL's text of its content. */
export function lazyResource(text: string, resourceType: string): Resource {
  const target = { resourceType } as unknown as Target;
  const members: Members = { target, text, resourceType, changed: false };
  const id = LEADING_ID.exec(text)?.[1];
  if (id !== undefined) target.id = id;
  else cut(members);
  Object.defineProperty(target, MEMBERS, { value: members, enumerable: false, configurable: true });
  return new Proxy(target, HANDLER) as unknown as Resource;
}

/**
 * The parsers of a query whose jsonb columns are handed over as PostgreSQL's text
 * (lazyResource's input) instead of parsed. Selecting the jsonb column itself rather than
 * `content::text` lets PostgreSQL write the text only for the rows it returns: a cast in
 * the select list is computed below a sort, for every match (44 Encounters of a patient
 * for a page of 10, 30 Patients of a name for 20), ~10–20 µs each for Synthea's.
 */
export const JSONB_AS_TEXT: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.JSONB || oid === pg.types.builtins.JSON ? (value: string) => value : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Member `name` of `resource`, as a lazy resource would give it but without parsing it
 * into the object: it stays untouched (written as stored). For callers that only look
 * (the audit's patients of a Bundle of thousands). Any other object: `resource[name]`.
 */
export function peekMember(resource: object, name: string): unknown {
  const members = (resource as Partial<Target>)[MEMBERS];
  if (!members || Object.prototype.hasOwnProperty.call(members.target, name)) return (resource as Record<string, unknown>)[name];
  if (members.untouched) {
    const i = members.untouched.get(name);
    const spans = members.spans as number[];
    return i === undefined ? undefined : JSON.parse(members.text.slice(spans[3 * i + 1], spans[3 * i + 2]));
  }
  // No includes() first: reading the members before it stops at the first longer key.
  const span = findTopLevelMember(members.text, name);
  return span ? JSON.parse(members.text.slice(span[1], span[2])) : undefined;
}

/**
 * JSON.stringify, with the untouched members of lazy resources anywhere in `value` written
 * as their stored text rather than parsed and written again.
 */
export function stringifyWithStoredText(value: unknown): string {
  const outer = collected;
  const texts: string[] = [];
  collected = texts;
  let out: string;
  try {
    out = JSON.stringify(value);
  } finally {
    collected = outer;
  }
  return texts.length === 0 ? out : out.replace(PLACEHOLDER, (_, i: string) => texts[Number(i)]);
}

/** Cuts the text into its members (once); `id`, if already on the object, stays untouched. */
function cut(members: Members): Map<string, number> {
  if (members.untouched) return members.untouched;
  const { names, spans } = topLevelMembers(members.text);
  const untouched = new Map<string, number>();
  for (let i = 0; i < names.length; i++) untouched.set(names[i], i);
  // The object holds resourceType from the start: written from its value (first), never from the text.
  untouched.delete('resourceType');
  const target = members.target;
  const at = untouched.get('id');
  if (at !== undefined && !Object.prototype.hasOwnProperty.call(target, 'id')) target.id = JSON.parse(members.text.slice(spans[3 * at + 1], spans[3 * at + 2]));
  members.names = names;
  members.spans = spans;
  members.untouched = untouched;
  return untouched;
}

/** Whether the stored text may hold member `name`: PostgreSQL writes a key, and only a key, as `"name": `. */
function mayHold(members: Members, name: string): boolean {
  return members.untouched ? members.untouched.has(name) : members.text.includes(`${JSON.stringify(name)}: `);
}

/** Parses a member into the object: an ordinary property from then on, no longer written as stored. */
function materialize(target: Target, name: string): void {
  const members = target[MEMBERS];
  if (!mayHold(members, name)) return;
  const untouched = cut(members);
  const i = untouched.get(name);
  if (i === undefined) return;
  const spans = members.spans as number[];
  target[name] = JSON.parse(members.text.slice(spans[3 * i + 1], spans[3 * i + 2]));
  untouched.delete(name);
}

/** A member is written, deleted or added. */
function change(members: Members, name: string): void {
  cut(members).delete(name);
  members.changed = true;
}

function keysOf(members: Members): string[] {
  const untouched = cut(members);
  const target = members.target;
  const keys: string[] = [];
  if (Object.prototype.hasOwnProperty.call(target, 'resourceType')) keys.push('resourceType');
  const stored = new Set(members.names);
  for (const name of members.names as string[]) {
    if (name !== 'resourceType' && (untouched.has(name) || Object.prototype.hasOwnProperty.call(target, name))) keys.push(name);
  }
  for (const key of Object.keys(target)) if (key !== 'resourceType' && !stored.has(key)) keys.push(key);
  return keys;
}

const HANDLER: ProxyHandler<Target> = {
  get(target, key, receiver) {
    if (key === 'toJSON') return toJSON;
    if (typeof key === 'string' && !Object.prototype.hasOwnProperty.call(target, key)) materialize(target, key);
    return Reflect.get(target, key, receiver);
  },
  set(target, key, value) {
    if (typeof key === 'string') change(target[MEMBERS], key);
    target[key] = value;
    return true;
  },
  has(target, key) {
    return key in target || (typeof key === 'string' && mayHold(target[MEMBERS], key) && cut(target[MEMBERS]).has(key));
  },
  deleteProperty(target, key) {
    if (typeof key === 'string') change(target[MEMBERS], key);
    return delete target[key];
  },
  defineProperty(target, key, descriptor) {
    if (typeof key === 'string') change(target[MEMBERS], key);
    return Reflect.defineProperty(target, key, descriptor);
  },
  ownKeys(target) {
    return keysOf(target[MEMBERS]);
  },
  getOwnPropertyDescriptor(target, key) {
    // Spread, Object.entries and the like ask for each member's descriptor, then read it.
    if (typeof key === 'string' && !Object.prototype.hasOwnProperty.call(target, key)) materialize(target, key);
    return Reflect.getOwnPropertyDescriptor(target, key);
  },
};

/** How many members `cut` leaves untouched: all but resourceType. */
function untouchedWhenCut(members: Members): number {
  const names = members.names as string[];
  return names.includes('resourceType') ? names.length - 1 : names.length;
}

/**
 * The stored text without its top-level resourceType member. Only Bundle, Parameters and
 * contained resources put a resource inside a resource: without those, the one
 * `"resourceType": ` in the text is the resource's own, found by indexOf; otherwise the
 * members before it are read (findTopLevelMember).
 */
function withoutResourceType(members: Members): string {
  const { text, resourceType } = members;
  const needle = `"resourceType": ${JSON.stringify(resourceType)}`;
  let start = text.indexOf(needle);
  let end = start + needle.length;
  const nested = resourceType === 'Bundle' || resourceType === 'Parameters' || text.includes('"contained": ') || text.indexOf('"resourceType": ', start + 1) >= 0;
  if (start < 0 || nested) {
    const span = findTopLevelMember(text, 'resourceType');
    if (!span) return text;
    [start, , end] = span;
  }
  // With the separator after it (`, `), or before it when it is the last member.
  if (text.startsWith(', ', end)) return text.slice(0, start) + text.slice(end + 2);
  const before = text.lastIndexOf(',', start);
  return before > 0 && text.slice(before, start).trim() === ',' ? text.slice(0, before) + text.slice(end) : text.slice(0, start) + text.slice(end);
}

function toJSON(this: Target): unknown {
  if (!collected) {
    const plain: Record<string, unknown> = {};
    for (const key of Object.keys(this)) plain[key] = this[key];
    return plain;
  }
  collected.push(storedText(this[MEMBERS]));
  return `\u0000stored:${collected.length - 1}\u0000`;
}

/** The resource's JSON: resourceType, then untouched members as stored (`"name": value`) and the others written from their values. */
function storedText(members: Members): string {
  const { target, text } = members;
  const type = `{"resourceType":${JSON.stringify(target.resourceType)}`;
  // Nothing read but resourceType and id, nothing changed: the stored text is the resource.
  if (!members.changed && (!members.untouched || members.untouched.size === untouchedWhenCut(members))) {
    const rest = withoutResourceType(members);
    return rest.length <= 2 ? `${type}}` : `${type},${rest.slice(1)}`;
  }
  const spans = members.spans as number[];
  const untouched = members.untouched as Map<string, number>;
  const parts: string[] = [];
  for (const key of keysOf(members)) {
    if (key === 'resourceType') continue;
    const i = untouched.get(key);
    if (i !== undefined) {
      parts.push(text.slice(spans[3 * i], spans[3 * i + 2]));
      continue;
    }
    const json = JSON.stringify(target[key]);
    if (json !== undefined) parts.push(`${JSON.stringify(key)}:${json}`);
  }
  if (!Object.prototype.hasOwnProperty.call(target, 'resourceType')) return `{${parts.join(',')}}`;
  return parts.length === 0 ? `${type}}` : `${type},${parts.join(',')}}`;
}

/**
 * The top-level members of a JSON object's text: their names, and per member the offsets
 * of its name's opening quote, its value's start and its value's end. Strings are skipped
 * with indexOf (most of a resource's bytes are in strings), nesting is counted on
 * brackets. The text is PostgreSQL's output of a jsonb value (well formed).
 */
export function topLevelMembers(text: string): { names: string[]; spans: number[] } {
  const names: string[] = [];
  const spans: number[] = [];
  let i = skipSpace(text, text.indexOf('{') + 1);
  while (i < text.length && text.charCodeAt(i) !== 0x7d /* } */) {
    const nameStart = i;
    const nameEnd = stringEnd(text, i);
    const rawName = text.slice(i, nameEnd);
    names.push(rawName.includes('\\') ? (JSON.parse(rawName) as string) : rawName.slice(1, -1));
    i = skipSpace(text, text.indexOf(':', nameEnd) + 1);
    const start = i;
    i = valueEnd(text, i);
    let end = i;
    while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
    spans.push(nameStart, start, end);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return { names, spans };
}

/**
 * [the name's opening quote, the value's start, the value's end) of top-level member
 * `name`, reading members only until it:
 * PostgreSQL writes an object's keys shortest first, then in byte order, so a key that
 * sorts after `name` means it is absent.
 */
export function findTopLevelMember(text: string, name: string): [number, number, number] | undefined {
  let i = skipSpace(text, text.indexOf('{') + 1);
  while (i < text.length && text.charCodeAt(i) !== 0x7d /* } */) {
    const nameStart = i;
    const nameEnd = stringEnd(text, i);
    const rawName = text.slice(i, nameEnd);
    const key = rawName.includes('\\') ? (JSON.parse(rawName) as string) : rawName.slice(1, -1);
    if (key.length > name.length || (key.length === name.length && key > name)) return undefined;
    i = skipSpace(text, text.indexOf(':', nameEnd) + 1);
    const start = i;
    i = valueEnd(text, i);
    if (key === name) {
      let end = i;
      while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
      return [nameStart, start, end];
    }
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return undefined;
}

/** The index of the `,` or `}` that ends the value starting at `at`. */
function valueEnd(text: string, at: number): number {
  let depth = 0;
  let i = at;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = stringEnd(text, i) - 1;
    } else if (c === 0x7b || c === 0x5b /* { [ */) {
      depth++;
    } else if (c === 0x7d || c === 0x5d /* } ] */) {
      if (depth === 0) break;
      depth--;
    } else if (c === 0x2c /* , */ && depth === 0) {
      break;
    }
  }
  return i;
}

/** The index just after the string literal starting at `at` (its opening quote). */
function stringEnd(text: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const quote = text.indexOf('"', i);
    if (quote < 0) return text.length;
    // Escaped when preceded by an odd number of backslashes.
    let backslashes = 0;
    for (let j = quote - 1; text.charCodeAt(j) === 0x5c; j--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
