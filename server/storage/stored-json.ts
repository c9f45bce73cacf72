import type { Resource } from '@medplum/fhirtypes';
import { canonicalRank } from './canonical-key-order';

/**
 * Resources as PostgreSQL gives them (the text of the JSONB), parsed only when some code
 * looks inside them. A search page of 20 Patients is ~75 kB of JSON: parsing it in pg's
 * row parser and writing it again with JSON.stringify was a quarter of the server's CPU
 * for `Patient?name=` (a profile at 10× Synthea). A page that goes out unchanged is
 * written from this text (http/write-response.ts); anything that reads a resource's
 * content gets the parsed object transparently, and from then on the resource is
 * written as any other object.
 */

/** One top-level member of a JSON object's text: `"key": value`, from `start` to `end`. */
interface Member {
  key: string;
  start: number;
  end: number;
  valueStart: number;
}

const QUOTE = 34; // "
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const COLON = 58;

/** The index just after the string that starts (with its quote) at `i`. */
function endOfString(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) throw new SyntaxError('unterminated string in stored JSON');
    let backslashes = 0;
    for (let k = quote - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** The index just after the value that starts at `i` (no whitespace before it). */
function endOfValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === QUOTE) return endOfString(text, i);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    // A number, true, false or null: up to the next delimiter.
    let k = i;
    for (; k < text.length; k++) {
      const c = text.charCodeAt(k);
      if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c === 32) break;
    }
    return k;
  }
  let depth = 0;
  for (let k = i; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === QUOTE) {
      k = endOfString(text, k) - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return k + 1;
    }
  }
  throw new SyntaxError('unterminated value in stored JSON');
}

function skipSpace(text: string, i: number): number {
  let k = i;
  for (let c = text.charCodeAt(k); c === 32 || c === 10 || c === 13 || c === 9; c = text.charCodeAt(++k));
  return k;
}

/** The top-level members of the JSON object in `text`, in their order there. */
export function topLevelMembers(text: string): Member[] {
  const members: Member[] = [];
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) throw new SyntaxError('stored JSON is not an object');
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) return members;
  for (;;) {
    const start = i;
    const keyEnd = endOfString(text, i);
    const rawKey = text.slice(i + 1, keyEnd - 1);
    const key = rawKey.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : rawKey;
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) throw new SyntaxError('expected : in stored JSON');
    const valueStart = skipSpace(text, i + 1);
    const end = endOfValue(text, valueStart);
    members.push({ key, start, end, valueStart });
    i = skipSpace(text, end);
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) return members;
    if (c !== COMMA) throw new SyntaxError('expected , or } in stored JSON');
    i = skipSpace(text, i + 1);
  }
}

/** The proxy's target: the stored text until parsed, then also the parsed content. */
interface LazyState {
  /** The resource's JSON, top-level members in FHIR order. */
  text: string;
  members: Member[];
  resourceType: string;
  id: string | undefined;
  /** Set once anything read the content: from then on it is an object like any other. */
  parsed: Record<string | symbol, unknown> | undefined;
}

/** Asked of a lazy resource, answers its state (a symbol no JSON key can be). */
const STATE = Symbol('stored JSON');

function parsed(state: LazyState): Record<string | symbol, unknown> {
  if (!state.parsed) state.parsed = JSON.parse(state.text) as Record<string, unknown>;
  return state.parsed;
}

/**
 * One handler for every lazy resource (closures per resource cost more than the parse
 * they save). The target is the state; every trap answers from the parsed content, which
 * keeps the proxy invariants: the state's own properties are all configurable.
 */
const HANDLER: ProxyHandler<LazyState> = {
  get(state, key) {
    if (key === STATE) return state;
    if (!state.parsed) {
      if (key === 'resourceType') return state.resourceType;
      if (key === 'id') return state.id;
      // `then` is asked by every await of a value; neither it nor a symbol is an element of a resource.
      if (key === 'then' || typeof key === 'symbol') return undefined;
    }
    return parsed(state)[key];
  },
  has: (state, key) => key in parsed(state),
  ownKeys: (state) => Reflect.ownKeys(parsed(state)),
  getOwnPropertyDescriptor: (state, key) => Reflect.getOwnPropertyDescriptor(parsed(state), key),
  set(state, key, value) {
    parsed(state)[key] = value;
    return true;
  },
  defineProperty: (state, key, descriptor) => Reflect.defineProperty(parsed(state), key, descriptor),
  deleteProperty: (state, key) => Reflect.deleteProperty(parsed(state), key),
  getPrototypeOf: () => Object.prototype,
};

/**
 * A resource backed by its stored JSON text (`content::text`). `resourceType` and `id`
 * are read from the text; any other access parses it. The top level is put in FHIR's
 * order (resourceType first, then the elements in definition order), as for parsed
 * content (canonical-key-order.ts).
 */
export function lazyResource(storedText: string): Resource {
  const stored = topLevelMembers(storedText);
  let resourceType: string | undefined;
  let id: string | undefined;
  for (const m of stored) {
    if (m.key === 'resourceType') resourceType = JSON.parse(storedText.slice(m.valueStart, m.end)) as string;
    else if (m.key === 'id') id = JSON.parse(storedText.slice(m.valueStart, m.end)) as string;
  }
  if (resourceType === undefined) throw new SyntaxError('stored resource without resourceType');
  const ranks = stored.map((m) => canonicalRank(resourceType as string, m.key));
  let text = storedText;
  let members = stored;
  if (ranks.some((r, i) => i > 0 && ranks[i - 1] > r)) {
    const order = stored.map((_, i) => i).sort((a, b) => ranks[a] - ranks[b]);
    // Recomposed with the same separators as PostgreSQL writes them; offsets follow.
    members = [];
    const parts: string[] = [];
    let at = 1;
    for (const i of order) {
      const m = stored[i];
      if (parts.length > 0) at += 2;
      members.push({ key: m.key, start: at, end: at + (m.end - m.start), valueStart: at + (m.valueStart - m.start) });
      at += m.end - m.start;
      parts.push(storedText.slice(m.start, m.end));
    }
    text = `{${parts.join(', ')}}`;
  }
  const state: LazyState = { text, members, resourceType, id, parsed: undefined };
  return new Proxy(state, HANDLER) as unknown as Resource;
}

function stateOf(value: unknown): LazyState | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  return (value as { [STATE]?: LazyState })[STATE];
}

/** The JSON of a lazy resource nobody has looked into (so it is exactly what was stored); undefined otherwise. */
export function untouchedText(resource: unknown): string | undefined {
  const state = stateOf(resource);
  return state && !state.parsed ? state.text : undefined;
}

/**
 * `resource[field].reference` when it is a string, without parsing a lazy resource
 * (only that member's value is): what the audit reads of every resource it answers.
 */
export function topLevelReference(resource: Resource, field: string): string | undefined {
  const state = stateOf(resource);
  let value: unknown;
  if (state && !state.parsed) {
    const member = state.members.find((m) => m.key === field);
    value = member ? JSON.parse(state.text.slice(member.valueStart, member.end)) : undefined;
  } else {
    value = (resource as unknown as Record<string, unknown>)[field];
  }
  const reference = (value as { reference?: unknown } | undefined)?.reference;
  return typeof reference === 'string' ? reference : undefined;
}

/**
 * The JSON of a resource or Bundle, compact: lazy resources nobody looked into (the
 * resource itself, or the Bundle's entries) are copied from their text, the rest is
 * JSON.stringify. A Bundle's entries keep their key order, so the output is what
 * JSON.stringify would give up to whitespace inside the copied resources.
 */
export function stringifyResource(resource: Resource): string {
  const own = untouchedText(resource);
  if (own !== undefined) return own;
  const entries = (resource as { entry?: unknown }).entry;
  if (resource.resourceType !== 'Bundle' || !Array.isArray(entries) || !entries.some((e) => stateOf(e?.resource) !== undefined)) {
    return JSON.stringify(resource);
  }
  // Bundle.signature comes after entry: not worth keeping in place here.
  if ((resource as { signature?: unknown }).signature !== undefined) return JSON.stringify(resource);
  const { entry: _entry, ...rest } = resource as Resource & { entry: { resource?: unknown }[] };
  const head = JSON.stringify(rest);
  const parts = entries.map((e: { resource?: unknown }) => {
    const state = stateOf(e?.resource);
    // Parsed: its plain object (JSON.stringify takes a slower path through a proxy).
    if (state?.parsed) return JSON.stringify({ ...e, resource: state.parsed });
    const text = state?.text;
    if (text === undefined) return JSON.stringify(e);
    // A placeholder that no JSON.stringify output of the other fields can contain
    // unquoted: the resource member's value, replaced by the text.
    const json = JSON.stringify({ ...e, resource: 0 });
    const at = json.indexOf('"resource":0');
    return json.slice(0, at + 11) + text + json.slice(at + 12);
  });
  return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"entry":[${parts.join(',')}]}`;
}
