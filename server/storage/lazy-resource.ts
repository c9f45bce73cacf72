import type { Resource } from '@medplum/fhirtypes';
import { canonicalKeys } from './canonical-key-order';

/**
 * A stored resource handed out without parsing it: PostgreSQL's text of the jsonb
 * (`content::text`), cut into its top-level members, each parsed only when something
 * reads it. A search page of 20 Synthea Patients (3.7 kB each) spent ~20 µs per
 * resource in JSON.parse and ~14 µs in JSON.stringify, most of the server's work for the
 * page; the members nobody reads (most of them: a plain search reads `resourceType`,
 * `id` and, for its AuditEvent, `subject`) go into the response as the text PostgreSQL
 * sent, in the order inCanonicalOrder gives.
 *
 * A Proxy over a plain object: a member is parsed into the object when first read (or
 * listed by a caller that reads descriptors, as spread and Object.entries do) and is an
 * ordinary property from then on; writes, deletes and additions go to the object. Every
 * reader sees the resource inCanonicalOrder would give. `toJSON` writes it: inside
 * `stringifyWithStoredText` as the stored text of the members never read, written or
 * deleted (one read may have changed it in place) and the values of the others; outside,
 * as the plain object, so a caller of JSON.stringify gets what it always got.
 * structuredClone refuses a Proxy: search results, the only lazy resources, are never cloned.
 */

interface Members {
  /** The object behind the Proxy (the Proxy itself must not be asked for its keys here: that parses every member). */
  target: Target;
  text: string;
  /** Per member, its offsets in `text`: [name's opening quote, value's start, value's end) at 3i, 3i + 1, 3i + 2. */
  spans: number[];
  /** Member name → its index in `spans`, while it is as stored: never written, deleted or (unless a primitive kept as parsed) read. */
  untouched: Map<string, number>;
  count: number;
  resourceType: string;
  /** Every member name in FHIR order, while none was added or deleted. */
  order?: string[];
  /** The resource's text in FHIR order, while every member is untouched. */
  whole?: string;
}

const MEMBERS = Symbol('members as stored');
/** The whole string value `"\u0000stored:N\u0000"` as JSON.stringify writes it; a string holds no raw NUL, so nothing else matches. */
const PLACEHOLDER = /"\\u0000stored:(\d+)\\u0000"/g;
/** Member lists in FHIR order by type and stored order: resources of a type share a few shapes. */
const ORDERS = new Map<string, string[]>();
const ORDERS_MAX = 10_000;

/** Texts collected by the stringifyWithStoredText running now (JSON.stringify is synchronous). */
let collected: string[] | undefined;

type Target = Record<string | symbol, unknown> & { [MEMBERS]: Members };

/** A resource over PostgreSQL's text of its jsonb content. */
export function lazyResource(text: string): Resource {
  const { names, spans } = topLevelMembers(text);
  const untouched = new Map<string, number>();
  for (let i = 0; i < names.length; i++) untouched.set(names[i], i);
  const target = {} as Target;
  // Read by nearly every caller, and short: parsed at once. They stay untouched (as stored) until written.
  for (const name of ['resourceType', 'id']) {
    const i = untouched.get(name);
    if (i !== undefined) target[name] = JSON.parse(text.slice(spans[3 * i + 1], spans[3 * i + 2]));
  }
  const resourceType = typeof target.resourceType === 'string' ? target.resourceType : '';
  const members: Members = { target, text, spans, untouched, count: names.length, resourceType, order: orderOf(resourceType, names) };
  Object.defineProperty(target, MEMBERS, { value: members, enumerable: false, configurable: true });
  return new Proxy(target, HANDLER) as unknown as Resource;
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

function orderOf(resourceType: string, names: string[]): string[] {
  const shape = `${resourceType}|${names.join(',')}`;
  let order = ORDERS.get(shape);
  if (!order) {
    order = canonicalKeys(resourceType, names);
    if (ORDERS.size < ORDERS_MAX) ORDERS.set(shape, order);
  }
  return order;
}

/** Parses a member into the object: an ordinary property from then on, no longer written as stored. */
function materialize(target: Target, name: string): void {
  const members = target[MEMBERS];
  const i = members.untouched.get(name);
  if (i === undefined) return;
  target[name] = JSON.parse(members.text.slice(members.spans[3 * i + 1], members.spans[3 * i + 2]));
  changed(members, name);
}

/** The member may differ from its stored text from now on. */
function changed(members: Members, name: string): void {
  members.untouched.delete(name);
  members.whole = undefined;
}

function keysOf(target: Target): string[] {
  const members = target[MEMBERS];
  if (members.order) return members.order;
  const names = Object.keys(target);
  for (const name of members.untouched.keys()) if (!Object.prototype.hasOwnProperty.call(target, name)) names.push(name);
  return (members.order = canonicalKeys(members.resourceType, names));
}

const HANDLER: ProxyHandler<Target> = {
  get(target, key, receiver) {
    if (key === 'toJSON') return toJSON;
    if (typeof key === 'string' && !Object.prototype.hasOwnProperty.call(target, key)) materialize(target, key);
    return Reflect.get(target, key, receiver);
  },
  set(target, key, value) {
    if (typeof key === 'string') {
      const members = target[MEMBERS];
      if (!members.untouched.has(key) && !Object.prototype.hasOwnProperty.call(target, key)) members.order = undefined;
      changed(members, key);
    }
    target[key] = value;
    return true;
  },
  has(target, key) {
    return key in target || (typeof key === 'string' && target[MEMBERS].untouched.has(key));
  },
  deleteProperty(target, key) {
    if (typeof key === 'string') {
      const members = target[MEMBERS];
      changed(members, key);
      members.order = undefined;
    }
    return delete target[key];
  },
  defineProperty(target, key, descriptor) {
    if (typeof key === 'string') {
      const members = target[MEMBERS];
      changed(members, key);
      members.order = undefined;
    }
    return Reflect.defineProperty(target, key, descriptor);
  },
  ownKeys(target) {
    return keysOf(target);
  },
  getOwnPropertyDescriptor(target, key) {
    // Spread, Object.entries and the like ask for each member's descriptor, then read it.
    if (typeof key === 'string' && !Object.prototype.hasOwnProperty.call(target, key)) materialize(target, key);
    return Reflect.getOwnPropertyDescriptor(target, key);
  },
};

function toJSON(this: Target): unknown {
  if (!collected) {
    const plain: Record<string, unknown> = {};
    for (const key of Object.keys(this)) plain[key] = this[key];
    return plain;
  }
  collected.push(storedText(this[MEMBERS]));
  return `\u0000stored:${collected.length - 1}\u0000`;
}

/** The resource's JSON: untouched members as stored (`"name": value`), the others written from their values, in FHIR order. */
function storedText(members: Members): string {
  if (members.whole !== undefined) return members.whole;
  const { target, text, spans, untouched } = members;
  const parts: string[] = [];
  for (const key of keysOf(target)) {
    const i = untouched.get(key);
    if (i !== undefined) {
      parts.push(text.slice(spans[3 * i], spans[3 * i + 2]));
      continue;
    }
    const json = JSON.stringify(target[key]);
    if (json !== undefined) parts.push(`${JSON.stringify(key)}:${json}`);
  }
  const whole = `{${parts.join(',')}}`;
  // Kept only while nothing was read: a member read may be changed in place, unseen.
  if (untouched.size === members.count) members.whole = whole;
  return whole;
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
    let depth = 0;
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
    let end = i;
    while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
    spans.push(nameStart, start, end);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return { names, spans };
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
