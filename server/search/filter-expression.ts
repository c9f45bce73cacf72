import { badRequest } from '../core/outcome';
import type { SearchFilter } from './search-request';

/**
 * `_filter` (R4 search_filter.html): `name co "pet" and (birthdate ge 2014-10-10 or not
 * (gender eq male))`. Each comparison names a search parameter of the type (or a chain,
 * `subject.name`) and is turned into the filter the same parameter would give as a
 * query parameter (`parseOne(key, value)`), so every parameter type, index and access
 * rule applies unchanged; `and`, `or` and `not (…)` become ALL / ANY / NOT of those.
 * `and` binds tighter than `or`; parentheses group.
 *
 * Operators: eq, ne, co, sw, ew (strings: case- and accent-insensitive, each part of a
 * name or address a value of its own), gt, lt, ge, le, sa, eb, ap (dates, numbers,
 * quantities, as the prefixes), po (a date's period overlaps the value's), pr (present:
 * true/false), ss / sb (the value subsumes / is subsumed by a code: `:below` / `:above`),
 * in / ni (a ValueSet: `:in` / `:not-in`), re (a reference). Not supported, a 400:
 * filters inside a path (`related[…]`).
 * Any problem, an unknown parameter too, is a 400 naming `_filter`: leaving out a part of
 * a logical expression would change what it means.
 */
export type ParseOne = (key: string, value: string) => SearchFilter | undefined;

type Token = { kind: 'word'; text: string } | { kind: 'string'; text: string } | { kind: 'open' } | { kind: 'close' };

const ORDERED_KINDS: ReadonlySet<string> = new Set(['date', 'number', 'quantity', 'lastUpdated']);
const STRING_KINDS: ReadonlySet<string> = new Set(['string']);
const DATE_KINDS: ReadonlySet<string> = new Set(['date', 'lastUpdated']);
const REFERENCE_KINDS: ReadonlySet<string> = new Set(['reference']);
const PREFIX_OPERATORS: ReadonlySet<string> = new Set(['gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

function fail(text: string): Error {
  return badRequest(`_filter: ${text}`, '_filter');
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch === '(' ? 'open' : 'close' });
      i++;
    } else if (ch === '"') {
      // A JSON string: \" and \\ and the other JSON escapes.
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) throw fail(`unterminated string at ${i + 1}`);
      try {
        tokens.push({ kind: 'string', text: JSON.parse(text.slice(i, end + 1)) as string });
      } catch {
        throw fail(`malformed string at ${i + 1}`);
      }
      i = end + 1;
    } else {
      let end = i;
      // A word may hold a bracketed filter (`related[type eq x].target`): kept whole, refused later.
      let depth = 0;
      while (end < text.length && (depth > 0 || (!/\s/.test(text[end]) && text[end] !== '(' && text[end] !== ')'))) {
        if (text[end] === '[') depth++;
        else if (text[end] === ']') depth--;
        end++;
      }
      tokens.push({ kind: 'word', text: text.slice(i, end) });
      i = end;
    }
  }
  return tokens;
}

/** Query-string escaping of a quoted value: a `,` or `$` in it is data, not syntax. */
function escapeValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/\$/g, '\\$');
}

export function parseFilterExpression(text: string, parseOne: ParseOne): SearchFilter {
  const tokens = tokenize(text);
  let at = 0;
  const peekWord = (): string | undefined => {
    const t = tokens[at];
    return t?.kind === 'word' ? t.text.toLowerCase() : undefined;
  };

  const parseOr = (): SearchFilter => {
    const parts = [parseAnd()];
    while (peekWord() === 'or') {
      at++;
      parts.push(parseAnd());
    }
    return parts.length === 1 ? parts[0] : { kind: 'any', filters: parts };
  };
  const parseAnd = (): SearchFilter => {
    const parts = [parseUnary()];
    while (peekWord() === 'and') {
      at++;
      parts.push(parseUnary());
    }
    return parts.length === 1 ? parts[0] : { kind: 'all', filters: parts };
  };
  const parseGroup = (): SearchFilter => {
    if (tokens[at]?.kind !== 'open') throw fail(`expected ( at token ${at + 1}`);
    at++;
    const inner = parseOr();
    if (tokens[at]?.kind !== 'close') throw fail(`expected ) at token ${at + 1}`);
    at++;
    return inner;
  };
  const parseUnary = (): SearchFilter => {
    if (peekWord() === 'not' && tokens[at + 1]?.kind === 'open') {
      at++;
      return { kind: 'not', filter: parseGroup() };
    }
    if (tokens[at]?.kind === 'open') return parseGroup();
    return parseComparison();
  };
  const parseComparison = (): SearchFilter => {
    const [path, op, value] = tokens.slice(at, at + 3);
    if (path?.kind !== 'word' || op?.kind !== 'word' || (value?.kind !== 'word' && value?.kind !== 'string')) {
      throw fail(`expected "parameter operator value" at token ${at + 1}`);
    }
    at += 3;
    return comparison(path.text, op.text.toLowerCase(), value.kind === 'string' ? escapeValue(value.text) : value.text, parseOne);
  };

  if (tokens.length === 0) throw fail('empty expression');
  const filter = parseOr();
  if (at < tokens.length) throw fail(`unexpected ${describe(tokens[at])} at token ${at + 1}`);
  return filter;
}

function describe(token: Token): string {
  return token.kind === 'open' ? '(' : token.kind === 'close' ? ')' : `"${token.text}"`;
}

function comparison(path: string, op: string, value: string, parseOne: ParseOne): SearchFilter {
  if (path.includes('[')) throw fail(`filters inside a path (${path}) are not supported`);
  if (path.includes(':')) throw fail(`${path}: modifiers are written as operators in _filter`);
  const one = (key: string, v: string): SearchFilter => {
    const filter = parseOne(key, v);
    if (!filter) throw fail(`${path} is not a search parameter of this type here`);
    return filter;
  };
  switch (op) {
    case 'eq':
    case 're':
      return withStringMatch(one(path, value), 'equals', op === 're' ? REFERENCE_KINDS : undefined, path, op);
    case 'ne': {
      const plain = one(path, value);
      if (endsIn(plain, ORDERED_KINDS)) return one(path, `ne${value}`);
      return { kind: 'not', filter: withStringMatch(plain, 'equals', undefined, path, op) };
    }
    case 'co':
      return stringOnly(one(`${path}:contains`, value), path, op);
    case 'sw':
      return stringOnly(one(path, value), path, op);
    case 'ew':
      return withStringMatch(stringOnly(one(path, value), path, op), 'ends-with', undefined, path, op);
    case 'pr':
      if (value !== 'true' && value !== 'false') throw fail(`${path} pr takes true or false, not ${value}`);
      return one(`${path}:missing`, value === 'true' ? 'false' : 'true');
    case 'ss':
      return one(`${path}:below`, value);
    case 'sb':
      return one(`${path}:above`, value);
    case 'in':
      return one(`${path}:in`, value);
    case 'ni':
      return one(`${path}:not-in`, value);
    case 'po': {
      // Overlaps: neither starts after nor ends before the value's period, and has a date at all.
      const after = one(path, `sa${value}`);
      if (!endsIn(after, DATE_KINDS)) throw fail(`po compares periods; ${path} is not a date`);
      const parts: SearchFilter[] = [
        { kind: 'not', filter: after },
        { kind: 'not', filter: one(path, `eb${value}`) },
      ];
      if (path !== '_lastUpdated') parts.push(one(`${path}:missing`, 'false'));
      return { kind: 'all', filters: parts };
    }
    default: {
      if (!PREFIX_OPERATORS.has(op)) throw fail(`unknown operator ${op}`);
      const filter = one(path, `${op}${value}`);
      if (!endsIn(filter, ORDERED_KINDS)) throw fail(`${op} compares dates, numbers and quantities; ${path} is none`);
      return filter;
    }
  }
}

/**
 * The filters a path ends in: what the parameter at its end gave, through chains and
 * `_has`, and through the alternatives of a chain without a target type (`subject.name`:
 * one per type `subject` can point to).
 */
function leaves(filter: SearchFilter): SearchFilter[] {
  if (filter.kind === 'chain' || filter.kind === 'has') return leaves(filter.filter);
  if (filter.kind === 'any' || filter.kind === 'all') return filter.filters.flatMap(leaves);
  return [filter];
}

function replaceLeaves(filter: SearchFilter, replace: (f: SearchFilter) => SearchFilter): SearchFilter {
  if (filter.kind === 'chain' || filter.kind === 'has') return { ...filter, filter: replaceLeaves(filter.filter, replace) };
  if (filter.kind === 'any' || filter.kind === 'all') return { ...filter, filters: filter.filters.map((f) => replaceLeaves(f, replace)) };
  return replace(filter);
}

const endsIn = (filter: SearchFilter, kinds: ReadonlySet<string>): boolean => leaves(filter).every((f) => kinds.has(f.kind));

/** A string parameter compared whole (eq) or by its end (ew) instead of its start, the query's default. */
function withStringMatch(filter: SearchFilter, match: 'equals' | 'ends-with', kinds: ReadonlySet<string> | undefined, path: string, op: string): SearchFilter {
  if (kinds && !endsIn(filter, kinds)) throw fail(`${op} compares references; ${path} is not one`);
  return replaceLeaves(filter, (f) => (f.kind === 'string' ? { ...f, match } : f));
}

function stringOnly(filter: SearchFilter, path: string, op: string): SearchFilter {
  if (!endsIn(filter, STRING_KINDS)) throw fail(`${op} compares strings; ${path} is not a string parameter`);
  return filter;
}
